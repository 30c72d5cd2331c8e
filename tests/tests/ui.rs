//! Compile-time behaviour of `#[derive(Events)]` and `#[netsock::service]`:
//! what must compile (and run), and what must fail with which message.
//! Snapshots: `tests/ui/fail/*.stderr`; see `tests/ui/README.md`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    t.compile_fail("ui/fail/*.rs");
}
