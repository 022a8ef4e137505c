"""A TCP proxy for the multi-host security test: forwards every byte both
ways between its clients and one target, except that in the client-to-target
stream of each connection it flips one byte of the first ZMTP frame that
follows the handshake and is at least --min-frame bytes long (an image frame,
not a heartbeat), so CURVE's authentication has something to reject.

usage: tamper.py LISTEN_HOST:PORT TARGET_HOST:PORT [--min-frame N] [--no-flip] [--log FILE]
   (run with /usr/bin/python3)

ZMTP 3 (RFC 23): a 64-byte greeting, then frames: a flags byte (0x02: an
8-byte size follows, else a 1-byte one; 0x04: a command), the size, the
body. The CURVE handshake ends with the client's INITIATE command; with
another mechanism (--insecure: NULL) with its READY command. Every frame
after that is fair game.

Prints "listening HOST:PORT" once bound. The log (default stderr) gets one
line per connection opened or closed and per byte flipped:
  flip conn 1 offset 1234 frame 2 size 163781
so the test can tell that a flip really happened.
"""
import argparse
import asyncio
import sys

GREETING = 64


class Flipper:
    """Follows one client-to-target ZMTP stream; flips a byte once."""

    def __init__(self, conn, min_frame, enabled, log):
        self.conn, self.min_frame, self.enabled, self.log = conn, min_frame, enabled, log
        self.offset = 0         # stream offset of buf[0]
        self.state = "greeting"  # greeting, flags, size, body
        self.need = GREETING    # bytes still to pass in this state
        self.size_bytes = b""
        self.flags = 0
        self.body_head = b""    # the first bytes of a command's body (its name)
        self.body_size = 0
        self.handshaken = False
        self.flipped = False
        self.frames = 0
        self.maybe_flip_at = None

    def feed(self, data):
        data = bytearray(data)
        i = 0
        while i < len(data):
            if self.state == "greeting":
                n = min(self.need, len(data) - i)
                i += n
                self.need -= n
                if not self.need:
                    self.state = "flags"
            elif self.state == "flags":
                self.flags = data[i]
                i += 1
                self.state, self.need, self.size_bytes = "size", 8 if self.flags & 0x02 else 1, b""
            elif self.state == "size":
                n = min(self.need, len(data) - i)
                self.size_bytes += bytes(data[i:i + n])
                i += n
                self.need -= n
                if not self.need:
                    self.body_size = int.from_bytes(self.size_bytes, "big")
                    self.state, self.need, self.body_head = "body", self.body_size, b""
                    self.frames += 1
                    self.maybe_flip_at = None
                    if self.handshaken and not self.flipped and self.enabled and self.body_size >= self.min_frame:
                        self.maybe_flip_at = self.body_size // 2  # the middle: the payload, not a header
                    if not self.need:
                        self.state = "flags"
            else:  # body
                n = min(self.need, len(data) - i)
                done = self.body_size - self.need  # body bytes passed before this chunk
                if len(self.body_head) < 16:
                    self.body_head += bytes(data[i:i + min(n, 16 - len(self.body_head))])
                if self.maybe_flip_at is not None and done <= self.maybe_flip_at < done + n:
                    j = i + self.maybe_flip_at - done
                    data[j] ^= 0x55
                    self.flipped = True
                    self.log(f"flip conn {self.conn} offset {self.offset + j} frame {self.frames} size {self.body_size}")
                    self.maybe_flip_at = None
                i += n
                self.need -= n
                if not self.need:
                    name = self.body_head[1:1 + self.body_head[0]] if self.body_head else b""
                    if self.flags & 0x04 and name in (b"INITIATE", b"READY"):
                        self.handshaken = True
                    self.state = "flags"
        self.offset += len(data)
        return bytes(data)


async def pump(reader, writer, transform=None):
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(transform(data) if transform else data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except OSError:
            pass


def split_addr(text):
    host, _, port = text.rpartition(":")
    return host, int(port)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("listen")
    p.add_argument("target")
    p.add_argument("--min-frame", type=int, default=1000)
    p.add_argument("--no-flip", action="store_true")
    p.add_argument("--log")
    a = p.parse_args()
    logf = open(a.log, "a", buffering=1) if a.log else sys.stderr
    conns = 0

    def log(line):
        logf.write(line + "\n")

    async def serve(creader, cwriter):
        nonlocal conns
        conns += 1
        conn = conns
        try:
            treader, twriter = await asyncio.open_connection(*split_addr(a.target))
        except OSError as e:
            log(f"conn {conn}: target {a.target}: {e}")
            cwriter.close()
            return
        log(f"open conn {conn}")
        flipper = Flipper(conn, a.min_frame, not a.no_flip, log)
        await asyncio.gather(pump(creader, twriter, flipper.feed), pump(treader, cwriter))
        log(f"close conn {conn} after {flipper.offset} bytes, {flipper.frames} frames")

    server = await asyncio.start_server(serve, *split_addr(a.listen))
    print(f"listening {a.listen}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
