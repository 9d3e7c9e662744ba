// Counts heap allocations made by the calling thread while counting is on: the test binary's
// own malloc family interposes glibc's for the whole process and forwards to it.
#ifndef LOCKSTEP_ALLOCATION_COUNTER_H
#define LOCKSTEP_ALLOCATION_COUNTER_H

/// Starts (1) or stops (0) counting this thread's allocations; starting resets the count.
void allocation_counting(int on);

/// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc, memalign) this thread
/// made while counting was on.
long allocation_count(void);

#endif
