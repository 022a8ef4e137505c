"""Real photos that Debian packages ship, preprocessed as ImageNet classifiers expect.

Shared by torchvision_export.py (batch-norm calibration) and make_inputs.py
(reference inputs). Every image is turned into a float32 array of shape
3x224x224 (C order, RGB) the same way torchvision's classification recipe does:
resize the shorter side to 256 (PIL bilinear), centre-crop 224x224, scale to
[0, 1], subtract the ImageNet mean and divide by its std per channel.
Deterministic: the same package versions give the same bytes.
"""

import glob
import os
import sys

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RESIZE = 256
CROP = 224

# Photos in python3-skimage's bundled ("legacy") data set: no download needed.
SKIMAGE_PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "motorcycle")
DARKNET_DIR = "/usr/share/darknet/data"
# The reference inputs make_inputs.py writes (input-<name>.npy) and that the
# export script runs PyTorch on; scripts/models times ONNX Runtime on the first.
REFERENCE_INPUTS = ("chelsea", "coffee", "astronaut")


def require(module, debian_package):
    """Imports a module or exits with the Debian package that provides it."""
    try:
        return __import__(module)
    except ImportError as e:
        sys.exit(
            f"{os.path.basename(sys.argv[0])}: cannot import {module} ({e}).\n"
            f"Install it with: apt-get install --no-install-recommends {debian_package}\n"
            f"and run this script with /usr/bin/python3 (Debian's interpreter), "
            f"or run scripts/models, which installs everything it needs."
        )


def _skimage_photo(name):
    require("skimage", "python3-skimage")
    import skimage.data

    if name == "motorcycle":
        return skimage.data.stereo_motorcycle()[0]
    return getattr(skimage.data, name)()


def _darknet_photos():
    """Names of the darknet package's photos (sorted), or () when not installed."""
    # scream.jpg is a painting, not a photo; keep the photos only.
    paths = sorted(glob.glob(os.path.join(DARKNET_DIR, "*.jpg")))
    return tuple(
        "darknet-" + os.path.splitext(os.path.basename(p))[0]
        for p in paths
        if os.path.basename(p) != "scream.jpg"
    )


def available():
    """Names of every photo on this machine: skimage's first, then darknet's."""
    return SKIMAGE_PHOTOS + _darknet_photos()


def load_rgb(name):
    """The photo `name` as a PIL RGB image."""
    require("PIL", "python3-pil")
    import numpy as np
    from PIL import Image

    if name.startswith("darknet-"):
        path = os.path.join(DARKNET_DIR, name[len("darknet-"):] + ".jpg")
        if not os.path.exists(path):
            sys.exit(f"photo {name}: {path} is missing (apt-get install darknet)")
        with Image.open(path) as im:
            return im.convert("RGB")
    if name not in SKIMAGE_PHOTOS:
        sys.exit(f"unknown photo '{name}'; known: {', '.join(available())}")
    return Image.fromarray(np.ascontiguousarray(_skimage_photo(name))).convert("RGB")


def preprocess(image):
    """PIL RGB image -> float32 array 3x224x224, ImageNet-normalised."""
    import numpy as np
    from PIL import Image

    w, h = image.size
    scale = RESIZE / min(w, h)
    size = (max(RESIZE, round(w * scale)), max(RESIZE, round(h * scale)))
    image = image.resize(size, Image.BILINEAR)
    left = (size[0] - CROP) // 2
    top = (size[1] - CROP) // 2
    image = image.crop((left, top, left + CROP, top + CROP))
    x = np.asarray(image, dtype=np.float32) / np.float32(255.0)  # HWC
    x = (x - np.array(IMAGENET_MEAN, np.float32)) / np.array(IMAGENET_STD, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def add_arguments(parser, default):
    """Adds --photos (comma-separated, default `default`) and --list to an argparse parser."""
    parser.add_argument("--photos", default=",".join(default),
                        help="comma-separated photo names (default: %(default)s)")
    parser.add_argument("--list", action="store_true", help="list the photos on this machine and exit")


def from_arguments(args):
    """Checks numpy and PIL are there; with --list prints the photos and exits; else the --photos names."""
    require("numpy", "python3-numpy")
    require("PIL", "python3-pil")
    if args.list:
        print("\n".join(available()))
        sys.exit(0)
    return [n for n in args.photos.split(",") if n]


def tensor(name):
    """The photo `name`, preprocessed: float32 array 1x3x224x224."""
    return preprocess(load_rgb(name))[None]
