#[netsock::service]
struct SumNumbers {
    total: i64,
}

fn main() {
    // The struct is still emitted, so this line does not add an error.
    let _ = SumNumbers { total: 0 }.total;
}
