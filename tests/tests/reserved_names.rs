//! The names `#[derive(Events)]` refuses to generate are exactly the methods
//! users can call on netsock's endpoints.
//!
//! A generated method (`emit_x`, the request stub `x`, `on_x`) is
//! implemented for every endpoint, so one named like a method a user can
//! already call there would be silently shadowed by the runtime's inherent
//! method, or make the call ambiguous: the macro gives a stub or handler
//! with such a name a suffix (`x_request`, `on_x_event`), a shape no
//! runtime method may have (checked here too). A request stub can take any name, so
//! every such method counts: the `pub fn`s of the inherent impls of
//! `Socket`, `Server` and `Broadcast` (associated functions such as
//! `connect` included, as `Socket::connect` would read the same), and the
//! methods of their trait impls (`clone`, `fmt`, `emit`, ..), found in every
//! `.rs` file under `netsock/src`, however deep. Any other type that
//! implements `Endpoint` (the generated traits' bound) counts too. The
//! methods of traits users do not name (`pub(crate)`, or `#[doc(hidden)]`
//! like those generated code calls through `netsock::__private`, always by
//! their full path) do not.
//!
//! The list lives in `netsock-macros/src/reserved.txt` (a proc-macro crate
//! cannot export it), read by the macro and here; the derive's documentation
//! in `netsock-macros/src/lib.rs` lists the same names, checked here too.
//!
//! Not seen: methods added through `macro_rules!` or blanket impls.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use syn::ext::IdentExt;
use syn::visit::Visit;

/// The endpoint types whose methods are reserved even if they stopped
/// implementing `Endpoint`.
const ENDPOINTS: &[&str] = &["Socket", "Server", "Broadcast"];

const RESERVED_TXT: &str = "netsock-macros/src/reserved.txt";
const MACROS_LIB: &str = "netsock-macros/src/lib.rs";
const RUNTIME_SRC: &str = "netsock/src";
const EVENTS_CHAPTER: &str = "book/src/events.md";

fn workspace_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn read(relative: &str) -> String {
    let path = workspace_path(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// Every `.rs` file under `dir`, recursively, in a stable order.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    let mut paths: Vec<PathBuf> = entries
        .map(|entry| entry.expect("directory entry").path())
        .collect();
    paths.sort();
    for path in paths {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

/// The methods users can call, per type, from every impl block in a file.
#[derive(Default)]
struct Methods {
    /// Type name → method names.
    of: BTreeMap<String, BTreeSet<String>>,
    /// Types with an `impl Endpoint for ..`.
    endpoints: BTreeSet<String>,
    /// (type, trait, method) of every trait impl, counted once the traits
    /// users cannot name are known.
    trait_methods: Vec<(String, String, String)>,
    /// Traits declared without `pub` (`pub(crate)` or private), or
    /// `#[doc(hidden)]`: their methods are not for users to call.
    private_traits: BTreeSet<String>,
}

/// `Socket<In, Out>` → `Socket`; `None` for references, tuples, ...
fn type_name(ty: &syn::Type) -> Option<String> {
    match ty {
        syn::Type::Path(p) if p.qself.is_none() => {
            p.path.segments.last().map(|s| s.ident.unraw().to_string())
        }
        _ => None,
    }
}

impl<'ast> Visit<'ast> for Methods {
    fn visit_item_impl(&mut self, item: &'ast syn::ItemImpl) {
        if let Some(ty) = type_name(&item.self_ty) {
            let of_trait = item.trait_.as_ref().map(|(_, path, _)| path);
            if of_trait
                .and_then(|path| path.segments.last())
                .is_some_and(|s| s.ident == "Endpoint")
            {
                self.endpoints.insert(ty.clone());
            }
            for impl_item in &item.items {
                let syn::ImplItem::Fn(f) = impl_item else {
                    continue;
                };
                // A trait's methods are as public as the trait; an inherent
                // one must say `pub` (not `pub(crate)`).
                let name = f.sig.ident.unraw().to_string();
                match of_trait.and_then(|path| path.segments.last()) {
                    Some(tr) => {
                        let tr = tr.ident.unraw().to_string();
                        self.trait_methods.push((ty.clone(), tr, name));
                    }
                    None if matches!(f.vis, syn::Visibility::Public(_)) => {
                        self.of.entry(ty.clone()).or_default().insert(name);
                    }
                    None => {}
                }
            }
        }
        syn::visit::visit_item_impl(self, item);
    }

    fn visit_item_trait(&mut self, item: &'ast syn::ItemTrait) {
        if !matches!(item.vis, syn::Visibility::Public(_)) || doc_hidden(&item.attrs) {
            self.private_traits.insert(item.ident.unraw().to_string());
        }
        syn::visit::visit_item_trait(self, item);
    }
}

/// Whether `attrs` hold `#[doc(hidden)]`.
fn doc_hidden(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("doc")
            && attr
                .parse_args::<syn::Ident>()
                .is_ok_and(|arg| arg == "hidden")
    })
}

fn runtime_methods() -> Methods {
    let mut files = Vec::new();
    rust_files(&workspace_path(RUNTIME_SRC), &mut files);
    assert!(!files.is_empty(), "no .rs file under {RUNTIME_SRC}");
    let mut methods = Methods::default();
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let ast = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        methods.visit_file(&ast);
    }
    for (ty, tr, name) in std::mem::take(&mut methods.trait_methods) {
        if !methods.private_traits.contains(&tr) {
            methods.of.entry(ty).or_default().insert(name);
        }
    }
    methods
}

/// The names in `reserved.txt`, refusing duplicates.
fn reserved_names() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in read(RESERVED_TXT).lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        assert!(
            names.insert(line.to_owned()),
            "`{line}` is listed twice in {RESERVED_TXT}"
        );
    }
    names
}

fn list(names: &BTreeMap<&String, Vec<String>>) -> String {
    names
        .iter()
        .map(|(name, types)| format!("`{name}` ({})", types.join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn reserved_names_are_the_endpoints_methods() {
    let found = runtime_methods();
    for ty in ENDPOINTS {
        assert!(
            found.of.contains_key(*ty),
            "no method of `{ty}` found under {RUNTIME_SRC}: was it renamed, or moved out of \
             that folder? Update ENDPOINTS or RUNTIME_SRC in {}",
            file!()
        );
    }
    let types: BTreeSet<&str> = ENDPOINTS
        .iter()
        .copied()
        .chain(found.endpoints.iter().map(String::as_str))
        .collect();
    // Method name → the types that have it.
    let mut callable: BTreeMap<&String, Vec<String>> = BTreeMap::new();
    for ty in &types {
        for name in found.of.get(*ty).into_iter().flatten() {
            callable.entry(name).or_default().push((*ty).to_owned());
        }
    }
    let reserved = reserved_names();
    let missing: BTreeMap<&String, Vec<String>> = callable
        .iter()
        .filter(|(name, _)| !reserved.contains(name.as_str()))
        .map(|(name, types)| (*name, types.clone()))
        .collect();
    let stale: Vec<&String> = reserved
        .iter()
        .filter(|name| !callable.contains_key(name))
        .collect();
    let mut problems = Vec::new();
    // The generated names that must never clash: a netsock method with one
    // of these shapes could shadow them.
    let shaped: Vec<&String> = callable
        .keys()
        .filter(|name| {
            ["emit_", "once_"].iter().any(|p| name.starts_with(p))
                || ["_request", "_event", "_with"]
                    .iter()
                    .any(|s| name.ends_with(s))
        })
        .copied()
        .collect();
    if !shaped.is_empty() {
        problems.push(format!(
            "methods of netsock's endpoints shaped like generated names (`emit_x`, `once_x`, \
             `x_request`, `on_x_event`, `on_x_with`): {shaped:?}. Generated names of that shape \
             are the ones that cannot clash; rename the method."
        ));
    }
    if !missing.is_empty() {
        problems.push(format!(
            "methods users can call on netsock's endpoints ({types:?}) that a variant of \
             #[derive(Events)] could still generate: {}.\nAdd each to {RESERVED_TXT} and to the \
             list in the doc comment of `derive_events` in {MACROS_LIB}, and say in CHANGELOG.md \
             that variants generating these names are now refused. (Or, if a method is not meant \
             for users, make it `pub(crate)`.)",
            list(&missing)
        ));
    }
    if !stale.is_empty() {
        problems.push(format!(
            "{RESERVED_TXT} reserves names that are no longer methods of netsock's endpoints \
             ({types:?}): {stale:?}.\nRemove them from it and from the list in the doc comment \
             of `derive_events` in {MACROS_LIB} (variants generating them become accepted), or, \
             if a method moved, make sure it is still in an impl block under {RUNTIME_SRC}."
        ));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// The doc comment of the function `name` in `file`, one line per `///`.
fn doc_of(file: &syn::File, name: &str) -> Option<String> {
    file.items.iter().find_map(|item| match item {
        syn::Item::Fn(f) if f.sig.ident == name => Some(
            f.attrs
                .iter()
                .filter_map(|attr| match &attr.meta {
                    syn::Meta::NameValue(nv) if nv.path.is_ident("doc") => match &nv.value {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => Some(s.value()),
                        _ => None,
                    },
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        _ => None,
    })
}

#[test]
fn derive_events_documents_the_reserved_names() {
    const START: &str = "netsock reserves:";
    const END: &str = "takes a suffix instead";
    let lib = syn::parse_file(&read(MACROS_LIB)).expect("netsock-macros' lib.rs parses");
    let doc = doc_of(&lib, "derive_events")
        .unwrap_or_else(|| panic!("no `fn derive_events` in {MACROS_LIB}"));
    let section = doc
        .split_once(START)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(section, _)| section)
        .unwrap_or_else(|| {
            panic!(
                "the doc comment of `derive_events` in {MACROS_LIB} should list the reserved \
                 names between \"{START}\" and \"{END}\"; if that text changed, update this test"
            )
        });
    assert_lists_reserved(
        section,
        &format!("the doc comment of `derive_events` in {MACROS_LIB}"),
    );
}

#[test]
fn events_chapter_lists_the_reserved_names() {
    const START: &str = "The names that take a suffix are netsock's own methods:";
    const END: &str = "Two variants";
    let chapter = read(EVENTS_CHAPTER);
    let section = chapter
        .split_once(START)
        .and_then(|(_, rest)| rest.split_once(END))
        .map(|(section, _)| section)
        .unwrap_or_else(|| {
            panic!(
                "{EVENTS_CHAPTER} should list the reserved names between \"{START}\" and \"{END}\""
            )
        });
    assert_lists_reserved(section, EVENTS_CHAPTER);
}

/// Checks that `section` names exactly the names in `reserved.txt`.
fn assert_lists_reserved(section: &str, place: &str) {
    // Every `name` in backticks that looks like a method (types are
    // capitalized).
    let documented: BTreeSet<String> = section
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|word| {
            word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect();
    let reserved = reserved_names();
    let undocumented: Vec<&String> = reserved.difference(&documented).collect();
    let not_reserved: Vec<&String> = documented.difference(&reserved).collect();
    assert!(
        undocumented.is_empty() && not_reserved.is_empty(),
        "{place} must list the names of {RESERVED_TXT}: add {undocumented:?}, remove \
         {not_reserved:?}"
    );
}
