// The stop request (SIGUSR1, SIGTERM) as an async-signal-safe flag: the handler only stores
// the signal number; the training loop reads it at step boundaries.
#ifndef LOCKSTEP_CSIGNALS_H
#define LOCKSTEP_CSIGNALS_H

/// Installs the handler for SIGUSR1 and SIGTERM (SA_RESTART, so system calls in progress resume)
/// and unblocks both in the calling thread.
void lockstep_install_stop_handlers(void);

/// The last stop signal received, or 0.
int lockstep_stop_signal(void);

#endif
