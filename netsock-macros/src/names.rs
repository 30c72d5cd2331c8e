//! Names: turning Rust names into generated names (snake_case methods,
//! CamelCase variants, raw identifiers for keywords), the names generated
//! methods must not take, and the canonical text of types in a schema.

use proc_macro2::{Ident, Span};
use quote::ToTokens;

/// `FooBar` → `foo_bar`, `HTTPRequest` → `http_request`, `Foo_bar` → `foo_bar`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None | Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) => p.is_uppercase() && next.is_some_and(char::is_lowercase),
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `get_user` → `GetUser`.
pub(crate) fn camel_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = true;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Keywords that can be used as raw identifiers (`r#type`).
const RAW_KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "do", "dyn",
    "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl", "in", "let",
    "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref", "return",
    "static", "struct", "trait", "true", "try", "type", "typeof", "unsafe", "unsized", "use",
    "virtual", "where", "while", "yield",
];

/// Keywords that cannot be identifiers at all, even raw.
pub(crate) const NOT_IDENTIFIERS: &[&str] = &["crate", "self", "super", "Self", "_"];

/// An identifier for a generated name, raw when the name is a keyword.
pub(crate) fn ident(name: &str, span: Span) -> Ident {
    if RAW_KEYWORDS.contains(&name) {
        Ident::new_raw(name, span)
    } else {
        Ident::new(name, span)
    }
}

/// A name for a generated local variable, invisible to the user's code.
pub(crate) fn hidden(name: &str) -> Ident {
    Ident::new(name, Span::mixed_site())
}

/// Names of methods that `Socket`, `Server` and `Broadcast` already have,
/// which a generated method must not take: the
/// runtime's inherent method would silently win, or the call would be
/// ambiguous. Documented on the derive in lib.rs; keep the two in sync.
pub(crate) const RESERVED: &[&str] = &[
    // Socket
    "builder",
    "close",
    "closed",
    "connect",
    "emit",
    "id",
    "is_connected",
    "on",
    "on_disconnect",
    "on_reconnect",
    "on_error",
    "on_request",
    "on_any",
    "peer_addr",
    "peer_cred",
    "request",
    "start",
    "timeout",
    "data",
    "set_data",
    "dropped_events",
    "metrics",
    "try_emit",
    "volatile",
    // Server
    "bind",
    "local_addr",
    "on_connection",
    "run",
    "socket",
    "sockets",
    "middleware",
    "serve",
    "shutdown",
    "run_until",
    // Rooms and broadcast
    "broadcast",
    "except",
    "in_room",
    "join",
    "leave",
    "rooms",
    "to",
    // Std traits implemented by Socket and Server
    "clone",
    "fmt",
];

/// Methods the generated client has, which a service method must not shadow.
pub(crate) const CLIENT_RESERVED: &[&str] = &[
    "clone",
    "connect",
    "fmt",
    "into_socket",
    "new",
    "socket",
    "timeout",
];

/// The canonical token text of a type or name, for the schema: tokens
/// joined without spaces, so it is the same on every machine and build.
pub(crate) fn schema_text(t: &impl ToTokens) -> String {
    t.to_token_stream().to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake() {
        assert_eq!(snake_case("FooBar"), "foo_bar");
        assert_eq!(snake_case("Foo_bar"), "foo_bar");
        assert_eq!(snake_case("HTTPRequest"), "http_request");
        assert_eq!(snake_case("V2Api"), "v2_api");
        assert_eq!(snake_case("Sum"), "sum");
        assert_eq!(snake_case("A"), "a");
    }

    #[test]
    fn camel() {
        assert_eq!(camel_case("get_user"), "GetUser");
        assert_eq!(camel_case("sum"), "Sum");
    }
}
