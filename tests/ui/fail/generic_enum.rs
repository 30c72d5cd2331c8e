use netsock::Events;

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api<T> {
    Value(T),
}

fn main() {}
