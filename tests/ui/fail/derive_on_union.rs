use netsock::Events;

#[derive(Events)]
union Bits {
    int: u32,
    float: f32,
}

fn main() {}
