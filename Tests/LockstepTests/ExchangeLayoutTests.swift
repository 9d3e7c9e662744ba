// ExchangeLayout: the three layouts of the step's exchange buffer, slot by slot.
import Testing
import Lockstep

struct ExchangeLayoutTests {
    @Test func firstOrderGSNRAndLBFGSLayouts() {
        let plain = ExchangeLayout(parameters: 10)
        #expect(plain.squares == nil && plain.loss == 10 && plain.tag == nil && plain.stop == 11 && plain.count == 12)
        let gsnr = ExchangeLayout(parameters: 10, gsnr: true)
        #expect(gsnr.squares == 10 && gsnr.loss == 20 && gsnr.tag == nil && gsnr.stop == 21 && gsnr.count == 22)
        let lbfgs = ExchangeLayout(parameters: 10, lbfgs: true)
        #expect(lbfgs.squares == nil && lbfgs.loss == 10 && lbfgs.tag == 11 && lbfgs.stop == 12 && lbfgs.count == 13)
        // The network's own buffer: the plain layout (GSNR folds into a buffer of its own).
        #expect(gsnr.ofNetworkGradients == plain && lbfgs.ofNetworkGradients == lbfgs)
        #expect(ExchangeLayout.slotsAfterGradient(lbfgs: false) == 2 && ExchangeLayout.slotsAfterGradient(lbfgs: true) == 3)
        #expect(plain.slots == 10..<12 && gsnr.slots == 20..<22 && lbfgs.slots == 10..<13)
    }
}
