use netsock::Events;

#[derive(Events, serde::Serialize, serde::Deserialize)]
#[allow(non_camel_case_types)]
enum Api {
    FooBar,
    Foo_bar,
    Done,
    #[request(response = ())]
    EmitDone,
}

fn main() {}
