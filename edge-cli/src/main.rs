//! The `arrowquant` command line.

fn main() {
    println!("arrowquant {}", env!("CARGO_PKG_VERSION"));
}
