//! Prints the streaming quantizer's state size for every format: a constant per group
//! size, independent of tensor length.
//!
//! `cargo run -p arrowquant-benches --example stream_state`

use arrowquant_benches::stream_state_table;

fn main() {
    println!("{:<28} {:>12}", "format", "state bytes");
    for (g, bytes) in stream_state_table() {
        for bits in [2, 4, 8] {
            for scheme in ["asym", "sym"] {
                println!("{:<28} {:>12}", format!("INT{bits} g{g} {scheme} (N = {g})"), bytes);
            }
        }
    }
    println!(
        "(StreamQuantizer::<GroupCodec, N>::STATE_BYTES = size_of::<Self>(): no heap, no length dependence)"
    );
}
