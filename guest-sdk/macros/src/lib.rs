//! The `#[task]` attribute of the wasmpool guest SDK.
//!
//! Use it through `wasmpool_guest::task`; see that crate for what a task may
//! take and return.
#![deny(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{ToTokens, format_ident, quote};
use syn::{FnArg, ItemFn, Pat, ReturnType, Type, parse_macro_input, spanned::Spanned};
use wasmpool_abi::{
    DESCRIPTOR_VERSION, ParamDescriptor, TaskDescriptor, is_valid_task_name, json_export_name, task_export_name,
};

/// Most arguments a task may take (serde implements tuples up to 16).
const MAX_PARAMS: usize = 16;

/// Turns a plain function into a wasmpool task.
///
/// On `wasm32` it adds an export `wasmpool_task_<name>` that decodes the
/// arguments, calls the function and encodes its result, plus a record in
/// the module's `wasmpool.tasks` section naming the task and its parameter
/// and result types, and (with the SDK's `json` feature) an export
/// `wasmpool_json_<name>` doing the same with JSON instead of postcard.
/// Elsewhere the function is left as it is.
#[proc_macro_attribute]
pub fn task(attr: TokenStream, item: TokenStream) -> TokenStream {
    if !attr.is_empty() {
        let err = syn::Error::new(Span::call_site(), "#[task] takes no arguments");
        return err.to_compile_error().into();
    }
    let function = parse_macro_input!(item as ItemFn);
    match expand(&function) {
        Ok(tokens) => tokens.into(),
        Err(err) => err.to_compile_error().into(),
    }
}

fn expand(function: &ItemFn) -> syn::Result<TokenStream2> {
    let sig = &function.sig;
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        return Err(syn::Error::new(sig.generics.span(), "a #[task] function cannot be generic"));
    }
    if let Some(token) = &sig.asyncness {
        return Err(syn::Error::new(token.span(), "a #[task] function cannot be async"));
    }
    if let Some(token) = &sig.variadic {
        return Err(syn::Error::new(token.span(), "a #[task] function cannot be variadic"));
    }
    let ident = &sig.ident;
    let name = ident.to_string().trim_start_matches("r#").to_owned();
    if !is_valid_task_name(&name) {
        return Err(syn::Error::new(ident.span(), format!("`{name}` is not a valid task name")));
    }

    let mut params = Vec::new();
    let mut types = Vec::new();
    // What the task function is called with: the decoded arguments, and
    // (`None`) the SDK's sender where the function takes one.
    let mut call_args: Vec<Option<TokenStream2>> = Vec::new();
    let mut sender = None;
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => {
                return Err(syn::Error::new(r.span(), "a #[task] function cannot take `self`"));
            }
            FnArg::Typed(typed) => {
                if let Type::ImplTrait(_) = *typed.ty {
                    return Err(syn::Error::new(typed.ty.span(), "a #[task] argument cannot be `impl Trait`"));
                }
                if is_sender_type(&typed.ty) {
                    if sender.replace(typed.ty.span()).is_some() {
                        return Err(syn::Error::new(typed.ty.span(), "a #[task] takes at most one `Sender`"));
                    }
                    call_args.push(None);
                    continue;
                }
                params.push(ParamDescriptor { name: param_name(&typed.pat), ty: type_name(&typed.ty) });
                let arg = format_ident!("__wasmpool_arg{}", types.len());
                call_args.push(Some(quote! { #arg }));
                types.push((*typed.ty).clone());
            }
        }
    }
    if types.len() > MAX_PARAMS {
        return Err(syn::Error::new(sig.inputs.span(), format!("a #[task] takes at most {MAX_PARAMS} arguments")));
    }

    let (result_name, fallible) = match &sig.output {
        ReturnType::Default => ("()".to_owned(), false),
        ReturnType::Type(_, ty) => (type_name(ty), is_result_type(ty)),
    };

    let descriptor = TaskDescriptor {
        version: DESCRIPTOR_VERSION,
        name: name.clone(),
        params,
        result: result_name,
        doc: doc_comment(function),
    };
    let record = descriptor.encode();
    let record_len = record.len();

    let export_name = task_export_name(&name);
    let export_fn = format_ident!("__wasmpool_task_{}", name);
    let json_export_name = json_export_name(&name);
    let json_export_fn = format_ident!("__wasmpool_json_{}", name);
    let record_static = format_ident!("__WASMPOOL_TASK_RECORD_{}", name.to_uppercase());
    let arg_idents: Vec<_> = (0..types.len()).map(|i| format_ident!("__wasmpool_arg{}", i)).collect();
    // The sender encodes messages as its export decodes arguments.
    let call_with = |sender: TokenStream2| {
        let args = call_args.iter().map(|arg| arg.clone().unwrap_or_else(|| sender.clone()));
        quote! { #ident(#(#args),*) }
    };
    let call = call_with(quote! { ::wasmpool_guest::Sender::__for_task() });
    let json_call = call_with(quote! { ::wasmpool_guest::Sender::__for_json_task() });
    let args = quote! { (#(#arg_idents,)*): (#(#types,)*) };
    let private = quote! { ::wasmpool_guest::__private };
    let postcard_export = export(
        &export_name,
        &export_fn,
        &args,
        quote! { #private::decode_args(__wasmpool_bytes) },
        finish(&call, fallible, quote! { #private::ok }),
    );
    // JSON carries one argument as its bare value, several as an array.
    let json_decode = match types.as_slice() {
        [] => quote! { #private::json::no_args(__wasmpool_bytes) },
        [only] => quote! { #private::json::decode_args::<#only>(__wasmpool_bytes, 1).map(|arg| (arg,)) },
        many => {
            let arity = many.len();
            quote! { #private::json::decode_args(__wasmpool_bytes, #arity) }
        }
    };
    let json_export = export(
        &json_export_name,
        &json_export_fn,
        &args,
        json_decode,
        finish(&json_call, fallible, quote! { #private::json::ok }),
    );

    Ok(quote! {
        #function

        #postcard_export

        ::wasmpool_guest::__if_json! {
            #json_export
        }

        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(non_upper_case_globals)]
        #[used]
        #[unsafe(link_section = "wasmpool.tasks")]
        static #record_static: [u8; #record_len] = [#(#record),*];
    })
}

/// One task export `export_name`: decodes the argument bytes with `decode`
/// into `args` (a `let` pattern with its type), then runs `finish`.
fn export(
    export_name: &str,
    export_fn: &syn::Ident,
    args: &TokenStream2,
    decode: TokenStream2,
    finish: TokenStream2,
) -> TokenStream2 {
    quote! {
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        #[allow(non_snake_case)]
        #[unsafe(export_name = #export_name)]
        extern "C" fn #export_fn(args_ptr: *mut u8, args_len: usize) -> *const u8 {
            // SAFETY: the host's side of the ABI guarantees the buffer came
            // from `wasmpool_alloc(args_len)` and is used once.
            unsafe {
                ::wasmpool_guest::__private::run_task(args_ptr, args_len, |__wasmpool_bytes: &[u8]| {
                    let #args = match #decode {
                        ::core::result::Result::Ok(args) => args,
                        ::core::result::Result::Err(message) => {
                            return ::wasmpool_guest::__private::bad_arguments(message);
                        }
                    };
                    #finish
                })
            }
        }
    }
}

/// Encodes what `call` returns with `ok`; for a task returning `Result`,
/// its `Err` becomes a task failure.
fn finish(call: &TokenStream2, fallible: bool, ok: TokenStream2) -> TokenStream2 {
    if fallible {
        quote! {
            match #call {
                ::core::result::Result::Ok(value) => #ok(&value),
                ::core::result::Result::Err(error) => ::wasmpool_guest::__private::failed(error),
            }
        }
    } else {
        quote! { #ok(&#call) }
    }
}

/// The parameter's name, or its pattern as written.
fn param_name(pat: &Pat) -> String {
    match pat {
        Pat::Ident(p) => p.ident.to_string().trim_start_matches("r#").to_owned(),
        other => tidy(other.to_token_stream().to_string()),
    }
}

/// A type as written, without the token spacing `to_string` adds.
fn type_name(ty: &Type) -> String {
    tidy(ty.to_token_stream().to_string())
}

fn tidy(mut text: String) -> String {
    for (from, to) in [
        (" <", "<"),
        ("< ", "<"),
        (" >", ">"),
        (" ,", ","),
        (" ::", "::"),
        (":: ", "::"),
        ("& ", "&"),
        ("( ", "("),
        (" )", ")"),
        ("[ ", "["),
        (" ]", "]"),
        (" ;", ";"),
    ] {
        while text.contains(from) {
            text = text.replace(from, to);
        }
    }
    text
}

/// Whether an argument is spelled `…Sender<…>`: the SDK's channel to the
/// host, passed by the SDK rather than decoded from the caller's arguments.
fn is_sender_type(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|s| s.ident == "Sender" && matches!(s.arguments, syn::PathArguments::AngleBracketed(_))),
        Type::Paren(inner) => is_sender_type(&inner.elem),
        Type::Group(inner) => is_sender_type(&inner.elem),
        _ => false,
    }
}

/// Whether the return type is spelled `…Result<…>`, whose `Err` the host
/// should see as a task failure.
fn is_result_type(ty: &Type) -> bool {
    match ty {
        Type::Path(path) => path.path.segments.last().is_some_and(|s| s.ident == "Result"),
        Type::Paren(inner) => is_result_type(&inner.elem),
        Type::Group(inner) => is_result_type(&inner.elem),
        _ => false,
    }
}

/// The function's `///` comment, one line per attribute, trimmed.
fn doc_comment(function: &ItemFn) -> String {
    let mut lines = Vec::new();
    for attr in &function.attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &attr.meta
            && let syn::Expr::Lit(syn::ExprLit { lit: syn::Lit::Str(s), .. }) = &nv.value
        {
            lines.push(s.value().trim().to_owned());
        }
    }
    lines.join("\n").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(src: &str) -> Type {
        syn::parse_str(src).unwrap()
    }

    #[test]
    fn type_names_read_as_written() {
        assert_eq!(type_name(&ty("Vec<u8>")), "Vec<u8>");
        assert_eq!(
            type_name(&ty("std::collections::BTreeMap<String, u32>")),
            "std::collections::BTreeMap<String, u32>"
        );
        assert_eq!(type_name(&ty("&'a str")), "&'a str");
        assert_eq!(type_name(&ty("(u32, [f64; 3])")), "(u32, [f64; 3])");
    }

    #[test]
    fn result_types_are_recognised_by_their_last_segment() {
        assert!(is_result_type(&ty("Result<u32, String>")));
        assert!(is_result_type(&ty("std::io::Result<u32>")));
        assert!(!is_result_type(&ty("Option<u32>")));
        assert!(!is_result_type(&ty("(Result<u8, u8>, u8)")));
    }

    #[test]
    fn the_record_describes_the_function() {
        let f: ItemFn = syn::parse_str("/// Adds.\n/// Twice.\nfn add(a: u32, (b, c): (u8, u8)) -> u64 { 0 }").unwrap();
        let out = expand(&f).unwrap().to_string();
        assert!(out.contains("\"wasmpool_task_add\""), "{out}");
        assert!(out.contains("\"wasmpool_json_add\""), "{out}");
        assert!(out.contains("json :: decode_args (__wasmpool_bytes , 2usize)"), "{out}");
        assert_eq!(doc_comment(&f), "Adds.\nTwice.");
    }

    #[test]
    fn json_takes_one_argument_bare_and_none_as_null() {
        let one: ItemFn = syn::parse_str("fn sqrt(x: f64) -> f64 { x }").unwrap();
        let out = expand(&one).unwrap().to_string();
        assert!(out.contains("json :: decode_args :: < f64 > (__wasmpool_bytes , 1)"), "{out}");
        let none: ItemFn = syn::parse_str("fn noop() {}").unwrap();
        assert!(expand(&none).unwrap().to_string().contains("json :: no_args (__wasmpool_bytes)"));
        let fallible: ItemFn = syn::parse_str("fn f(x: u8) -> Result<u8, String> { Ok(x) }").unwrap();
        let out = expand(&fallible).unwrap().to_string();
        assert!(out.contains("json :: ok (& value)") && out.contains("__private :: ok (& value)"), "{out}");
    }

    #[test]
    fn a_sender_argument_is_passed_by_the_sdk_not_decoded() {
        let f: ItemFn =
            syn::parse_str("fn walk(n: u32, out: wasmpool_guest::Sender<f64>, k: u8) -> u64 { 0 }").unwrap();
        let out = expand(&f).unwrap().to_string();
        assert!(
            out.contains("walk (__wasmpool_arg0 , :: wasmpool_guest :: Sender :: __for_task () , __wasmpool_arg1)"),
            "{out}"
        );
        // Called through its JSON entry point, the task sends JSON.
        assert!(
            out.contains(
                "walk (__wasmpool_arg0 , :: wasmpool_guest :: Sender :: __for_json_task () , __wasmpool_arg1)"
            ),
            "{out}"
        );
        assert!(is_sender_type(&ty("Sender<Vec<u8>>")));
        assert!(!is_sender_type(&ty("Sender")));
        assert!(!is_sender_type(&ty("Vec<Sender<u8>>")));
        let two: ItemFn = syn::parse_str("fn f(a: Sender<u8>, b: Sender<u8>) {}").unwrap();
        assert!(expand(&two).unwrap_err().to_string().contains("at most one"));
    }

    #[test]
    fn unsupported_signatures_are_refused_with_a_reason() {
        for (src, why) in
            [("fn f<T>(x: T) {}", "generic"), ("async fn f() {}", "async"), ("fn f(x: impl Copy) {}", "impl Trait")]
        {
            let f: ItemFn = syn::parse_str(src).unwrap();
            let err = expand(&f).unwrap_err().to_string();
            assert!(err.contains(why), "{src}: {err}");
        }
    }
}
