// A C target because a signal handler may only touch a volatile sig_atomic_t: Swift globals
// are lazily initialised behind a lock, which is not async-signal-safe.
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include "CSignals.h"

static volatile sig_atomic_t received = 0;

static void on_stop_signal(int signo) { received = signo; }

void lockstep_install_stop_handlers(void) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    // A parent may have left them blocked (the mask is inherited across exec): a blocked
    // SIGTERM stays pending forever and the job would run into its time limit unwarned.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGUSR1);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_UNBLOCK, &stop, NULL);
}

int lockstep_stop_signal(void) { return received; }
