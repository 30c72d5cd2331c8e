//! Saying how two schema texts differ, in words: what a client shows when
//! the server refuses it for a schema mismatch and sends its own schema.
//!
//! A schema text ([`Events::SCHEMA`](crate::Events::SCHEMA)) is
//! `Enum{Variant,Variant(T),Variant{a:T},Variant(T)->R}`; a combined
//! service's is `Combined{Part:Enum{..},Part:Enum{..}}`. The text is only
//! read here, never trusted: anything that does not parse is shown whole.

/// The most differences told; the rest are counted.
const SAID_MAX: usize = 6;

/// The longest piece of schema text quoted in a difference.
const QUOTE_MAX: usize = 160;

/// An enum's schema text split into its name and its items (variants, or a
/// combined service's parts), each with its leading name.
struct Parsed<'a> {
    name: &'a str,
    items: Vec<(&'a str, &'a str)>,
}

/// Splits `Name{a,b(..),c{..}}` at its top-level commas. `None` if the text
/// has another shape.
fn parse(text: &str) -> Option<Parsed<'_>> {
    let open = text.find('{')?;
    let body = text.get(open + 1..)?.strip_suffix('}')?;
    let name = &text[..open];
    let mut items = Vec::new();
    let (mut depth, mut start) = (0i32, 0);
    let bytes = body.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // `->` is an arrow, not a closing bracket.
            b'-' if bytes.get(i + 1) == Some(&b'>') => i += 1,
            b'(' | b'{' | b'<' | b'[' => depth += 1,
            b')' | b'}' | b'>' | b']' => depth -= 1,
            b',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
        i += 1;
    }
    if depth != 0 {
        return None;
    }
    if !body.is_empty() {
        items.push(&body[start..]);
    }
    let items = items
        .into_iter()
        .map(|item| {
            let end = item
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(item.len());
            (&item[..end], item)
        })
        .collect();
    Some(Parsed { name, items })
}

/// A combined service's item `Key:Enum{..}`: the `Enum{..}`.
fn part<'s>(item: &'s str, key: &str) -> Option<&'s str> {
    item.strip_prefix(key)?.strip_prefix(':')
}

fn quote(text: &str) -> String {
    if text.len() <= QUOTE_MAX {
        return text.to_owned();
    }
    let mut end = QUOTE_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// How `theirs` (the server's) differs from `ours` (this client's), one
/// sentence per difference; empty when the texts are equal.
///
/// ```text
/// the server's SumApi has Sum(Vec<i64>)->i64, this client's has Sum(Vec<i32>)->i64
/// ```
pub(crate) fn differences(theirs: &str, ours: &str) -> Vec<String> {
    let mut out = Vec::new();
    compare(theirs, ours, &mut out);
    if out.len() > SAID_MAX {
        let more = out.len() - (SAID_MAX - 1);
        out.truncate(SAID_MAX - 1);
        out.push(format!("and {more} more differences"));
    }
    out
}

fn compare(theirs: &str, ours: &str, out: &mut Vec<String>) {
    if theirs == ours {
        return;
    }
    let (Some(t), Some(o)) = (parse(theirs), parse(ours)) else {
        out.push(format!(
            "the server's schema is {}, this client's is {}",
            quote(theirs),
            quote(ours)
        ));
        return;
    };
    if t.name != o.name {
        out.push(format!(
            "the server's enum is {}, this client's is {}",
            quote(t.name),
            quote(o.name)
        ));
    }
    let name = o.name;
    let before = out.len();
    for (key, their_item) in &t.items {
        match o.items.iter().find(|(k, _)| k == key) {
            None => out.push(format!(
                "this client's {name} has no {key} (the server's has {})",
                quote(their_item)
            )),
            Some((_, our_item)) if our_item != their_item => {
                // A combined service's part: say what differs inside it.
                match (part(their_item, key), part(our_item, key)) {
                    (Some(t), Some(o)) => compare(t, o, out),
                    _ => out.push(format!(
                        "the server's {name} has {}, this client's has {}",
                        quote(their_item),
                        quote(our_item)
                    )),
                }
            }
            Some(_) => {}
        }
    }
    for (key, our_item) in &o.items {
        if !t.items.iter().any(|(k, _)| k == key) {
            out.push(format!(
                "the server's {name} has no {key} (this client's has {})",
                quote(our_item)
            ));
        }
    }
    if out.len() == before && t.items.len() == o.items.len() {
        let order = |p: &Parsed<'_>| {
            p.items
                .iter()
                .map(|(k, _)| *k)
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push(format!(
            "{name}'s variants are in another order: the server's {}, this client's {}",
            quote(&order(&t)),
            quote(&order(&o))
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::differences;

    #[test]
    fn a_changed_field_type_is_named() {
        assert_eq!(
            differences(
                "SumApi{Sum(Vec<i64>)->i64,Log{line:String}}",
                "SumApi{Sum(Vec<i32>)->i64,Log{line:String}}"
            ),
            ["the server's SumApi has Sum(Vec<i64>)->i64, this client's has Sum(Vec<i32>)->i64"]
        );
    }

    #[test]
    fn added_removed_and_renamed() {
        assert_eq!(
            differences("Chat{Message(String),Ping}", "Talk{Message(String),Pong}"),
            [
                "the server's enum is Chat, this client's is Talk",
                "this client's Talk has no Ping (the server's has Ping)",
                "the server's Talk has no Pong (this client's has Pong)",
            ]
        );
    }

    #[test]
    fn many_differences_are_counted_not_listed() {
        let said = differences("E{A,B,C,D,E,F,G,H}", "E{}");
        assert_eq!(said.len(), 6);
        assert_eq!(said[5], "and 3 more differences");
    }

    #[test]
    fn reordered_variants() {
        assert_eq!(
            differences("E{A,B(u8)}", "E{B(u8),A}"),
            ["E's variants are in another order: the server's A, B, this client's B, A"]
        );
    }

    #[test]
    fn a_combined_service_names_the_part() {
        assert_eq!(
            differences(
                "Both{Sum:SumApi{Sum(Vec<i64>)->i64},Log:LogApi{Line(String)}}",
                "Both{Sum:SumApi{Sum(Vec<i64>)->i64},Log:LogApi{Line(String),Flush}}"
            ),
            ["the server's LogApi has no Flush (this client's has Flush)"]
        );
    }

    #[test]
    fn garbage_is_quoted_not_trusted() {
        let long = "x".repeat(1000);
        let said = differences(&long, "E{A}");
        assert_eq!(said.len(), 1);
        assert!(said[0].len() < 400, "{}", said[0]);
        assert!(differences("E{A", "E{A}").len() == 1);
        assert!(differences("E{)}", "E{A}").len() == 1);
        assert!(differences("E{A}", "E{A}").is_empty());
    }
}
