// The parent of every multi-rank suite: serialized, so at most one mpirun job runs at a time
// (two at once would share the 2 cores and each other's timeouts).

import Testing

@Suite(.serialized) struct MultiRank {}
