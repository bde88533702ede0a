//! `rename_all = "…"`: serde's case conventions, applied to variant names
//! exactly as `#[serde(rename_all = "…")]` applies them, so an enum that uses
//! both gets the same names from each.

use syn::LitStr;

/// A case convention for variant names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

const RULES: [(&str, RenameRule); 8] = [
    ("lowercase", RenameRule::Lower),
    ("UPPERCASE", RenameRule::Upper),
    ("PascalCase", RenameRule::Pascal),
    ("camelCase", RenameRule::Camel),
    ("snake_case", RenameRule::Snake),
    ("SCREAMING_SNAKE_CASE", RenameRule::ScreamingSnake),
    ("kebab-case", RenameRule::Kebab),
    ("SCREAMING-KEBAB-CASE", RenameRule::ScreamingKebab),
];

impl RenameRule {
    /// The rule named by `lit`; the error, spanned on `lit`, lists the names.
    pub(crate) fn from_lit(lit: &LitStr) -> syn::Result<Self> {
        let value = lit.value();
        RULES
            .iter()
            .find(|(name, _)| *name == value)
            .map(|(_, rule)| *rule)
            .ok_or_else(|| {
                let names: Vec<String> = RULES.iter().map(|(n, _)| format!("\"{n}\"")).collect();
                syn::Error::new(
                    lit.span(),
                    format_args!(
                        "unknown `rename_all = \"{value}\"`; use one of {} (serde's names)",
                        names.join(", ")
                    ),
                )
            })
    }

    /// Applies the rule to a variant name written in PascalCase.
    pub(crate) fn apply(self, variant: &str) -> String {
        match self {
            RenameRule::Pascal => variant.to_owned(),
            RenameRule::Lower => variant.to_ascii_lowercase(),
            RenameRule::Upper => variant.to_ascii_uppercase(),
            RenameRule::Camel => {
                let mut chars = variant.chars();
                chars.next().map_or_else(String::new, |first| {
                    first.to_ascii_lowercase().to_string() + chars.as_str()
                })
            }
            RenameRule::Snake => snake(variant),
            RenameRule::ScreamingSnake => snake(variant).to_ascii_uppercase(),
            RenameRule::Kebab => snake(variant).replace('_', "-"),
            RenameRule::ScreamingKebab => snake(variant).replace('_', "-").to_ascii_uppercase(),
        }
    }
}

/// `StatusServer` → `status_server`: an underscore before every upper-case
/// letter but the first (serde's rule, so `HTTPServer` → `h_t_t_p_server`).
fn snake(variant: &str) -> String {
    let mut out = String::with_capacity(variant.len() + 4);
    for (i, ch) in variant.char_indices() {
        if i > 0 && ch.is_uppercase() {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_matches_serde() {
        let expected = [
            ("lowercase", "statusserver"),
            ("UPPERCASE", "STATUSSERVER"),
            ("PascalCase", "StatusServer"),
            ("camelCase", "statusServer"),
            ("snake_case", "status_server"),
            ("SCREAMING_SNAKE_CASE", "STATUS_SERVER"),
            ("kebab-case", "status-server"),
            ("SCREAMING-KEBAB-CASE", "STATUS-SERVER"),
        ];
        for (name, renamed) in expected {
            let lit = LitStr::new(name, proc_macro2::Span::call_site());
            let rule = RenameRule::from_lit(&lit).map(|r| r.apply("StatusServer"));
            assert_eq!(rule.ok().as_deref(), Some(renamed), "{name}");
        }
        assert_eq!(RenameRule::Snake.apply("HTTPServer"), "h_t_t_p_server");
    }

    #[test]
    fn unknown_rule_lists_the_names() {
        let lit = LitStr::new("snake", proc_macro2::Span::call_site());
        let err = RenameRule::from_lit(&lit).err().map(|e| e.to_string());
        assert!(err.is_some_and(|e| {
            e.starts_with("unknown `rename_all = \"snake\"`; use one of \"lowercase\"")
        }),);
    }
}
