//! The `zag-resumed` binary: parse the command line, run, exit.

fn main() {
    std::process::exit(zag_resumed::cli::main_with(std::env::args_os()));
}
