//! `simulator`: plays cashiers and wallets against a running gateway. The narrated
//! demo and the load generator are built in their own issue; until then this binary
//! only explains itself.

fn main() {
    eprintln!(
        "simulator: the `demo` and `load` commands are not built yet.\n\
         The wallet signing client they will use is the `simulator` library (simulator::wallet)."
    );
    std::process::exit(2);
}
