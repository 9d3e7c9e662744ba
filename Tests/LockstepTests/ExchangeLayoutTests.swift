// ExchangeLayout: the three layouts of the step's exchange buffer, slot by slot.
import Testing
import Lockstep

struct ExchangeLayoutTests {
    @Test func firstOrderGSNRAndLBFGSLayouts() {
        let plain = ExchangeLayout(parameters: 10)
        #expect(plain.squares == nil && plain.loss == 10 && plain.tag == nil && plain.stop == 11 && plain.checkpoint == 12 && plain.count == 13)
        let gsnr = ExchangeLayout(parameters: 10, gsnr: true)
        #expect(gsnr.squares == 10 && gsnr.loss == 20 && gsnr.tag == nil && gsnr.stop == 21 && gsnr.checkpoint == 22 && gsnr.count == 23)
        let lbfgs = ExchangeLayout(parameters: 10, lbfgs: true)
        #expect(lbfgs.squares == nil && lbfgs.loss == 10 && lbfgs.tag == 11 && lbfgs.stop == 12 && lbfgs.checkpoint == 13 && lbfgs.count == 14)
        // The network's own buffer: the plain layout (GSNR folds into a buffer of its own).
        #expect(gsnr.ofNetworkGradients == plain && lbfgs.ofNetworkGradients == lbfgs)
        #expect(ExchangeLayout.slotsAfterGradient(lbfgs: false) == 3 && ExchangeLayout.slotsAfterGradient(lbfgs: true) == 4)
        #expect(plain.slots == 10..<13 && gsnr.slots == 20..<23 && lbfgs.slots == 10..<14)
    }
}
