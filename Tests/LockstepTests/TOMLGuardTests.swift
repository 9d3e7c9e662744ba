// TOMLGuard refuses exactly the text toml++ aborts on (docs/fuzzing.md, T1/T2) and never valid
// TOML: every valid snippet here also parses in TOMLKit, every refused one is a syntax error.
import Testing
import Lockstep
import TOMLKit

struct TOMLGuardTests {
    static let valid = [
        "[run]\nname = \"a [#b] {} ,} [}\" # comment with [# and ,}\n",
        "decay_epochs = [\n  30,  # first drop.\n  60,\n]\n",
        "m = [\n  [],\n  [1, 2],\n  [ [1] ],\n  [{a = 1}],\n]\n",
        "a.\"b\\\"c\" = 1\nd = \"e. (f)\"\n",
        "a = \"\"\"\\\n  [#not a header]\n  ,}\n\"\"\"\nb = 1\n",
        "s = '''\n[#x]\n'''\n",
        "[[layers]]\nunits = 4\n[ \"quoted key\" ]\nx = 1\n",
        "[model]\nlayers = [{ units = 8 }, { units = 4, activation = \"relu\" }]\n",
        "x = -1.5\ny = 1979-05-27\nz = [\n  -1.0,\n  2.5e3,\n]\n",
        "a = { b.c = 1, d = [1, 2] }\n",
    ]

    @Test(arguments: valid)
    func validTOMLPassesAndParses(_ text: String) throws {
        try TOMLGuard.check(text, source: "t.toml")
        _ = try TOMLTable(string: text)
    }

    @Test(arguments: ["[#model]\n", "[ @x]\n", "[a.#b]\n", "[=x]\n", "[\u{00e4}]\n", "a = [}\n",
                      "layers = [{ units = 8 }, }, { units = 4 }]\n", "a. = 1\n"])
    func textToml2AbortsOnIsASyntaxError(_ text: String) {
        do {
            try TOMLGuard.check(text, source: "t.toml")
            Issue.record("accepted \(text)")
        } catch let e as LockstepError {
            #expect(e.message.hasPrefix("t.toml:1:") && e.message.contains("TOML syntax error"), "\(e.message)")
        } catch {
            Issue.record("\(error)")
        }
    }
}
