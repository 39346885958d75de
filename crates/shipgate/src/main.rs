//! The `shipgate` command; everything lives in the library (`shipgate::cli`).

fn main() -> std::process::ExitCode {
    shipgate::cli::main()
}
