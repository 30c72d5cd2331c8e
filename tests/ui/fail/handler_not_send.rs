use netsock::{Events, Socket};

#[derive(Events, serde::Serialize, serde::Deserialize)]
enum Api {
    #[request(response = i64)]
    Sum(Vec<i64>),
}

fn register(socket: &Socket<Api>) {
    // Not `Send`: an `Rc` held across the handler.
    let shared = std::rc::Rc::new(0);
    socket.on_sum(move |numbers| {
        let shared = shared.clone();
        async move { numbers.iter().sum::<i64>() + *shared }
    });
}

fn main() {}
