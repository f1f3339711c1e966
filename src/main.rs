//! The `keeper` binary: see [`keeper::server::cli`].

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(keeper::server::cli::main(args));
}
