// The watchdog reads the clock, then the main thread's progress stamp; a stamp taken in between
// is later than "now". That must read as no time at all: unsigned wrap-around once made it
// 1.8e10 s of stall and aborted a healthy 3-rank run (seen in a full test run).
import Testing
import Lockstep

@Suite struct StallWatchdogTests {
    @Test func aStampAfterTheClockReadIsNoTime() {
        #expect(StallWatchdog.seconds(from: 5_000_000_001, to: 5_000_000_000) == 0)
        #expect(StallWatchdog.seconds(from: 7, to: 7) == 0)
        #expect(StallWatchdog.seconds(from: 1_000_000_000, to: 3_500_000_000) == 2.5)
    }
}
