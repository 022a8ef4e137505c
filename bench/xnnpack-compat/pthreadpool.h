// Stand-in for pthreadpool.h when libpthreadpool-dev is absent: xnnpack.h
// needs only the opaque handle type (the bench always passes nullptr).
#pragma once

typedef struct pthreadpool* pthreadpool_t;
