// swift-tools-version:6.0
// Lockstep: synchronous data-parallel training over MPI, HDF5 in and out.
import PackageDescription

let package = Package(
    name: "Lockstep",
    products: [
        .executable(name: "lockstep", targets: ["lockstep-cli"]),
        .library(name: "Lockstep", targets: ["Lockstep"]),
        .executable(name: "lockstep-fuzz", targets: ["lockstep-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        // Thin header-only shims over the system C libraries (see each module.modulemap).
        .systemLibrary(name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
                       providers: [.apt(["libopenmpi-dev"])]),
        .systemLibrary(name: "CHDF5", path: "Sources/CHDF5", pkgConfig: "hdf5",
                       providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        // The stop-signal flag (a C handler: the only async-signal-safe place to keep it).
        .target(name: "CSignals", path: "Sources/CSignals"),
        .target(
            name: "Lockstep",
            dependencies: ["CMPI", "CHDF5", "CBLAS", "CZlib", "CSignals", "TOMLKit"]
        ),
        .executableTarget(
            name: "lockstep-cli",
            dependencies: ["Lockstep", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Fixtures/ holds reference dumps the tests open by path (scripts/reference writes them).
        .testTarget(name: "LockstepTests", dependencies: ["Lockstep"], exclude: ["Fixtures"]),
        // The step's "no allocation" property, counted by interposing malloc in the test binary.
        .target(name: "AllocationCounter", path: "Tests/AllocationCounter"),
        .testTarget(name: "AllocationTests", dependencies: ["Lockstep", "AllocationCounter"]),
        .testTarget(name: "MultiRankTests", dependencies: ["Lockstep", "lockstep-cli"]),
        // Fuzz targets (docs/fuzzing.md): a replay tool here; libFuzzer's driver when scripts/fuzz
        // builds it with -sanitize=fuzzer,address -DLOCKSTEP_LIBFUZZER into .build-fuzz.
        .executableTarget(name: "lockstep-fuzz", dependencies: ["Lockstep", "CHDF5"]),
    ]
)
