//! The `zag-resumed` binary: parse the command line, run, exit.

// Replaying a store allocates a dozen strings per record; mimalloc takes a
// start-up re-arm of 100,000 records from 300 to about 200 ms (benches/store).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(zag_resumed::cli::main_with(std::env::args_os()));
}
