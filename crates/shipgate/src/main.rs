//! The `shipgate` command; everything lives in the library (`shipgate::cli`).

/// mimalloc instead of glibc's malloc: under the push load (bench/p1.sh) glibc's
/// malloc, free and chunk consolidation took about a quarter of the gateway's CPU
/// (`perf record`; see bench/README.md, "Allocator").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    shipgate::cli::main()
}
