//! The `crate = "path"` option every conflictkit macro accepts.
//!
//! Generated code names runtime items as `#crate_path::__private::…`. The path
//! defaults to `::conflictkit`; users who rename the dependency or re-export
//! conflictkit from their own crate override it, as with serde's
//! `#[serde(crate = "…")]` and tokio's `#[tokio::main(crate = "…")]`.

use proc_macro2::Span;
use syn::{Expr, ExprLit, Lit, LitStr, Path};

use super::options::MacroOption;

/// `::conflictkit`, the crate path when no `crate = "…"` option is given.
pub(crate) fn default_crate_path() -> Path {
    let mut path = Path::from(syn::Ident::new("conflictkit", Span::call_site()));
    path.leading_colon = Some(Default::default());
    path
}

/// Parses the string of a `crate = "path"` option into a path; the error is
/// spanned on the string.
fn crate_path_from_lit(lit: &LitStr) -> syn::Result<Path> {
    lit.parse::<Path>().map_err(|_| {
        syn::Error::new(
            lit.span(),
            format!(
                "`crate = {:?}` is not a path; write the path to the conflictkit crate, e.g. `crate = \"::conflictkit\"`",
                lit.value()
            ),
        )
    })
}

/// Parses the value of a `crate = "path"` option given as an expression
/// (the `Meta::NameValue` form attribute macros see).
fn crate_path_from_expr(expr: &Expr) -> syn::Result<Path> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => crate_path_from_lit(lit),
        other => Err(syn::Error::new_spanned(
            other,
            "expected a string literal: `crate = \"path\"`",
        )),
    }
}

/// Parses a `crate = "path"` option read by [`super::options`].
pub(crate) fn crate_path_from_option(option: &MacroOption) -> syn::Result<Path> {
    crate_path_from_expr(option.value_like("crate = \"::conflictkit\"")?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::ToTokens;

    #[test]
    fn default_is_absolute() {
        assert_eq!(
            default_crate_path().to_token_stream().to_string(),
            ":: conflictkit"
        );
    }

    #[test]
    fn parses_paths_and_rejects_others() {
        let lit: LitStr = syn::parse_quote!("::my_app::ck");
        let path = crate_path_from_lit(&lit).map(|p| p.to_token_stream().to_string());
        assert_eq!(path.ok().as_deref(), Some(":: my_app :: ck"));

        let bad: LitStr = syn::parse_quote!("not a path");
        let err = crate_path_from_lit(&bad).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("is not a path")));

        let num: Expr = syn::parse_quote!(5);
        assert!(crate_path_from_expr(&num).is_err());
    }
}
