//! The `Condition` element: operators, condition keys and their evaluation.
//!
//! A block `{ operator: { key: values } }` holds when every operator's every key holds (AND); one
//! key holds when the request's value matches any of the listed values (OR). Keys are looked up
//! through [`ConditionValues`](super::types::ConditionValues); their names are case-insensitive, except
//! the part after `kms:EncryptionContext:`.
//!
//! Semantics, as in IAM, for a request whose key has the values `V` (absent, or empty, means no
//! values):
//!
//! | form | key absent | key present |
//! |------|-----------|-------------|
//! | `Op` | false | some `v` in `V` matches some listed value |
//! | `NotOp` | true | no `v` in `V` matches any listed value |
//! | `ForAnyValue:Op` | false | some `v` matches some listed value |
//! | `ForAnyValue:NotOp` | false | some `v` matches no listed value |
//! | `ForAllValues:Op` | true | every `v` matches some listed value |
//! | `ForAllValues:NotOp` | true | no `v` matches any listed value |
//! | `…IfExists` | true | as without `IfExists` |
//! | `Null` with `"true"` / `"false"` | true / false | false / true |

use std::fmt;

use super::json::Json;
use super::syntax::{literal, shown, string_list, suggestion, tokens, Scope, Version};
use super::types::{PolicyError, RequestContext};
use super::wildcard::{ArnPattern, Case, Pattern};

/// Condition keys with a fixed name, in canonical spelling: a policy may spell them in any case,
/// and [`ConditionValues`](super::types::ConditionValues) is asked for them in this spelling. Keys with a
/// free-form part keep that part as written: `kms:EncryptionContext:<key>` (case-sensitive), and
/// `aws:RequestTag/<tag>`, `aws:ResourceTag/<tag>`, `aws:PrincipalTag/<tag>`.
pub const KNOWN_CONDITION_KEYS: &[&str] = &[
    "kms:BypassPolicyLockoutSafetyCheck",
    "kms:CallerAccount",
    "kms:CustomerMasterKeySpec",
    "kms:CustomerMasterKeyUsage",
    "kms:DataKeyPairSpec",
    "kms:EncryptionAlgorithm",
    "kms:EncryptionContextKeys",
    "kms:ExpirationModel",
    "kms:GrantConstraintType",
    "kms:GrantIsForAWSResource",
    "kms:GrantOperations",
    "kms:GranteePrincipal",
    "kms:KeyAgreementAlgorithm",
    "kms:KeyOrigin",
    "kms:KeySpec",
    "kms:KeyUsage",
    "kms:MacAlgorithm",
    "kms:MessageType",
    "kms:MultiRegion",
    "kms:MultiRegionKeyType",
    "kms:PrimaryRegion",
    "kms:ReplicaRegion",
    "kms:RequestAlias",
    "kms:ResourceAliases",
    "kms:RetiringPrincipal",
    "kms:RotationPeriodInDays",
    "kms:ScheduleKeyDeletionPendingWindowInDays",
    "kms:SigningAlgorithm",
    "kms:ValidTo",
    "kms:ViaService",
    "kms:WrappingAlgorithm",
    "kms:WrappingKeySpec",
    "aws:CalledVia",
    "aws:CalledViaFirst",
    "aws:CalledViaLast",
    "aws:CurrentTime",
    "aws:EpochTime",
    "aws:MultiFactorAuthPresent",
    "aws:PrincipalAccount",
    "aws:PrincipalArn",
    "aws:PrincipalOrgID",
    "aws:PrincipalServiceName",
    "aws:PrincipalType",
    "aws:RequestedRegion",
    "aws:ResourceAccount",
    "aws:SecureTransport",
    "aws:SourceAccount",
    "aws:SourceArn",
    "aws:SourceIp",
    "aws:SourceVpc",
    "aws:SourceVpce",
    "aws:TagKeys",
    "aws:userid",
    "aws:username",
    "aws:ViaAWSService",
];

/// Key families with a free-form suffix, by canonical prefix; the suffix is kept as written.
const KEY_PREFIXES: &[&str] = &[
    "kms:EncryptionContext:",
    "aws:RequestTag/",
    "aws:ResourceTag/",
    "aws:PrincipalTag/",
];

/// Operators that compare values (everything but `Null`).
const OPERATORS: &[(&str, Base, bool)] = &[
    ("StringEquals", Base::Equals, false),
    ("StringNotEquals", Base::Equals, true),
    ("StringEqualsIgnoreCase", Base::EqualsIgnoreCase, false),
    ("StringNotEqualsIgnoreCase", Base::EqualsIgnoreCase, true),
    ("StringLike", Base::Like, false),
    ("StringNotLike", Base::Like, true),
    ("ArnEquals", Base::Arn, false),
    ("ArnNotEquals", Base::Arn, true),
    ("ArnLike", Base::Arn, false),
    ("ArnNotLike", Base::Arn, true),
    ("Bool", Base::Bool, false),
];

/// Operators of the IAM language that this engine refuses rather than misread.
const UNSUPPORTED: &[&str] = &[
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "IpAddress",
    "NotIpAddress",
    "BinaryEquals",
];

/// How an operator compares one request value with the listed values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Base {
    Equals,
    EqualsIgnoreCase,
    Like,
    Arn,
    Bool,
}

/// The set qualifier of an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Quantifier {
    /// No qualifier: meant for single-valued keys; on a multi-valued key, any value may match.
    Single,
    /// `ForAnyValue:`: some request value satisfies the operator; false for an absent key.
    AnyValue,
    /// `ForAllValues:`: every request value satisfies the operator; true for an absent key.
    AllValues,
}

/// A parsed operator name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    Compare {
        base: Base,
        negated: bool,
        quantifier: Quantifier,
        if_exists: bool,
    },
    Null,
}

impl Operator {
    fn parse(name: &str) -> Result<Operator, String> {
        let (quantifier, rest) = if let Some(rest) = name.strip_prefix("ForAllValues:") {
            (Quantifier::AllValues, rest)
        } else if let Some(rest) = name.strip_prefix("ForAnyValue:") {
            (Quantifier::AnyValue, rest)
        } else {
            (Quantifier::Single, name)
        };
        let (base_name, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        if base_name == "Null" {
            return if if_exists {
                Err(format!(
                    "'{}' is not valid: Null cannot take IfExists",
                    shown(name)
                ))
            } else if quantifier != Quantifier::Single {
                Err(format!(
                    "'{}' is not valid: Null cannot take ForAllValues or ForAnyValue",
                    shown(name)
                ))
            } else {
                Ok(Operator::Null)
            };
        }
        if let Some(&(_, base, negated)) = OPERATORS.iter().find(|(n, _, _)| *n == base_name) {
            return Ok(Operator::Compare {
                base,
                negated,
                quantifier,
                if_exists,
            });
        }
        if UNSUPPORTED.contains(&base_name) {
            return Err(format!(
                "operator '{}' is not supported by this engine (supported: String*, Arn*, Bool, Null)",
                shown(name)
            ));
        }
        let mut names: Vec<&str> = OPERATORS.iter().map(|(n, _, _)| *n).collect();
        names.push("Null");
        let hint = match suggestion(base_name, &names) {
            hint if !hint.is_empty() => hint,
            _ if name.contains(':') && quantifier == Quantifier::Single => {
                " (set qualifiers are ForAllValues: and ForAnyValue:)".to_owned()
            }
            _ => String::new(),
        };
        Err(format!("unknown operator '{}'{hint}", shown(name)))
    }
}

/// Where a key's value comes from when [`ConditionValues`](super::types::ConditionValues) lacks it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fallback {
    PrincipalArn,
    PrincipalAccount,
}

/// A condition key, in canonical spelling.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Key {
    name: Box<str>,
    fallback: Option<Fallback>,
}

impl Key {
    fn parse(name: &str) -> Result<Key, String> {
        let Some((prefix, rest)) = name.split_once(':') else {
            return Err(format!(
                "condition key '{}' must start with kms: or aws:",
                shown(name)
            ));
        };
        if !prefix.eq_ignore_ascii_case("kms") && !prefix.eq_ignore_ascii_case("aws") {
            return Err(format!(
                "condition key '{}' is not supported: only kms: and aws: keys",
                shown(name)
            ));
        }
        if rest.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("'{}' is not a condition key name", shown(name)));
        }
        for canonical_prefix in KEY_PREFIXES {
            let n = canonical_prefix.len();
            if name.len() >= n
                && name.is_char_boundary(n)
                && name[..n].eq_ignore_ascii_case(canonical_prefix)
            {
                let suffix = &name[n..];
                if suffix.is_empty() {
                    return Err(format!(
                        "condition key '{}' needs a name after '{canonical_prefix}'",
                        shown(name)
                    ));
                }
                return Ok(Key {
                    name: format!("{canonical_prefix}{suffix}").into(),
                    fallback: None,
                });
            }
        }
        let canonical = KNOWN_CONDITION_KEYS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(name))
            .copied()
            .unwrap_or(name);
        let fallback = match canonical {
            "aws:PrincipalArn" => Some(Fallback::PrincipalArn),
            "aws:PrincipalAccount" | "kms:CallerAccount" => Some(Fallback::PrincipalAccount),
            _ => None,
        };
        Ok(Key {
            name: canonical.into(),
            fallback,
        })
    }
}

/// The listed values of one key, compiled for the operator's comparison.
#[derive(Clone, PartialEq, Eq)]
enum Test {
    Equals(Vec<Box<str>>),
    /// Stored lowercased (per character, Unicode).
    EqualsIgnoreCase(Vec<Box<str>>),
    Like(Vec<Pattern>),
    Arn(Vec<ArnPattern>),
    Bool {
        when_true: bool,
        when_false: bool,
    },
    Null {
        when_absent: bool,
        when_present: bool,
    },
}

impl fmt::Debug for Test {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Test::Equals(v) => f.debug_tuple("Equals").field(v).finish(),
            Test::EqualsIgnoreCase(v) => f.debug_tuple("EqualsIgnoreCase").field(v).finish(),
            Test::Like(v) => f.debug_tuple("Like").field(v).finish(),
            Test::Arn(v) => f.debug_tuple("Arn").field(v).finish(),
            Test::Bool {
                when_true,
                when_false,
            } => write!(f, "Bool(true: {when_true}, false: {when_false})"),
            Test::Null {
                when_absent,
                when_present,
            } => write!(f, "Null(absent: {when_absent}, present: {when_present})"),
        }
    }
}

impl Test {
    /// Whether one request value matches any listed value.
    fn matches(&self, value: &str) -> bool {
        match self {
            Test::Equals(listed) => listed.iter().any(|l| **l == *value),
            Test::EqualsIgnoreCase(listed) => listed
                .iter()
                .any(|l| value.chars().flat_map(char::to_lowercase).eq(l.chars())),
            Test::Like(listed) => listed.iter().any(|p| p.matches(value)),
            Test::Arn(listed) => listed.iter().any(|p| p.matches(value)),
            Test::Bool {
                when_true,
                when_false,
            } => {
                (*when_true && value.eq_ignore_ascii_case("true"))
                    || (*when_false && value.eq_ignore_ascii_case("false"))
            }
            Test::Null { .. } => false,
        }
    }
}

/// One compiled condition: an operator applied to one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Condition {
    operator: Operator,
    key: Key,
    test: Test,
}

impl Condition {
    /// Validates and compiles a `Condition` block into its conditions (all must hold).
    pub(crate) fn parse_block(
        block: &Json,
        scope: &Scope<'_>,
        version: Version,
    ) -> Result<Vec<Condition>, PolicyError> {
        let Json::Object(operators) = block else {
            return Err(scope.error(
                "Condition",
                format_args!(
                    "must be an object such as {{\"StringEquals\": {{\"kms:CallerAccount\": \"111122223333\"}}}}, found {}",
                    block.kind()
                ),
            ));
        };
        if operators.is_empty() {
            return Err(scope.error(
                "Condition",
                "must not be empty (leave Condition out for an unconditional statement)",
            ));
        }
        let mut conditions = Vec::new();
        for (operator_name, keys) in operators {
            let operator =
                Operator::parse(operator_name).map_err(|m| scope.error("Condition", m))?;
            let path = format!("Condition.{operator_name}");
            let Json::Object(keys) = keys else {
                return Err(scope.error(
                    &path,
                    format_args!(
                        "must be an object mapping condition keys to values, found {}",
                        keys.kind()
                    ),
                ));
            };
            if keys.is_empty() {
                return Err(scope.error(&path, "must name at least one condition key"));
            }
            for (key_name, values) in keys {
                let key = Key::parse(key_name).map_err(|m| scope.error(&path, m))?;
                let key_path = format!("{path}.{key_name}");
                let test = compile_test(operator, values, scope, &key_path, version)?;
                conditions.push(Condition {
                    operator,
                    key,
                    test,
                });
            }
        }
        Ok(conditions)
    }

    /// The condition key, in canonical spelling.
    pub(crate) fn key_name(&self) -> &str {
        &self.key.name
    }

    /// Whether this condition holds for `request`.
    pub(crate) fn holds(&self, request: &RequestContext<'_>) -> bool {
        match self.operator {
            Operator::Null => {
                let Test::Null {
                    when_absent,
                    when_present,
                } = self.test
                else {
                    return false;
                };
                let mut present = false;
                self.visit(request, &mut |_| {
                    present = true;
                    false
                });
                if present {
                    when_present
                } else {
                    when_absent
                }
            }
            Operator::Compare {
                negated,
                quantifier,
                if_exists,
                ..
            } => {
                let mut seen = false;
                let result = match quantifier {
                    Quantifier::Single => {
                        let mut hit = false;
                        self.visit(request, &mut |v| {
                            seen = true;
                            hit = self.test.matches(v);
                            !hit
                        });
                        hit != negated
                    }
                    Quantifier::AnyValue => {
                        let mut found = false;
                        self.visit(request, &mut |v| {
                            seen = true;
                            found = self.test.matches(v) != negated;
                            !found
                        });
                        found
                    }
                    Quantifier::AllValues => {
                        let mut all = true;
                        self.visit(request, &mut |v| {
                            seen = true;
                            all = self.test.matches(v) != negated;
                            all
                        });
                        all
                    }
                };
                if seen {
                    result
                } else {
                    if_exists
                        || match quantifier {
                            Quantifier::Single => negated,
                            Quantifier::AnyValue => false,
                            Quantifier::AllValues => true,
                        }
                }
            }
        }
    }

    /// Feeds the key's values to `visit`, falling back to the request's principal fields for the
    /// keys that have them.
    fn visit(&self, request: &RequestContext<'_>, visit: &mut dyn FnMut(&str) -> bool) {
        if request.conditions.visit_values(&self.key.name, visit) {
            return;
        }
        let fallback = match self.key.fallback {
            None => return,
            Some(Fallback::PrincipalArn) => request.principal,
            Some(Fallback::PrincipalAccount) => request.principal_account,
        };
        if !fallback.is_empty() {
            visit(fallback);
        }
    }
}

/// Compiles the listed values of one key for `operator`.
fn compile_test(
    operator: Operator,
    values: &Json,
    scope: &Scope<'_>,
    path: &str,
    version: Version,
) -> Result<Test, PolicyError> {
    let list = string_list(values, scope, path, true)?;
    let at = |i: usize| list.path(path, i);
    let boolean = |i: usize, v: &str| -> Result<bool, PolicyError> {
        if v.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if v.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(scope.error(
                &at(i),
                format_args!("must be \"true\" or \"false\", found '{}'", shown(v)),
            ))
        }
    };
    let items = list.items.iter().enumerate();
    Ok(match operator {
        Operator::Null => {
            let (mut when_absent, mut when_present) = (false, false);
            for (i, v) in items {
                if boolean(i, v)? {
                    when_absent = true;
                } else {
                    when_present = true;
                }
            }
            Test::Null {
                when_absent,
                when_present,
            }
        }
        Operator::Compare { base, .. } => match base {
            Base::Bool => {
                let (mut when_true, mut when_false) = (false, false);
                for (i, v) in items {
                    if boolean(i, v)? {
                        when_true = true;
                    } else {
                        when_false = true;
                    }
                }
                Test::Bool {
                    when_true,
                    when_false,
                }
            }
            Base::Equals => Test::Equals(
                items
                    .map(|(i, v)| {
                        literal(v, version)
                            .map(String::into_boxed_str)
                            .map_err(|m| scope.error(&at(i), m))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Base::EqualsIgnoreCase => Test::EqualsIgnoreCase(
                items
                    .map(|(i, v)| {
                        literal(v, version)
                            .map(|s| s.chars().flat_map(char::to_lowercase).collect())
                            .map_err(|m| scope.error(&at(i), m))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Base::Like => Test::Like(
                items
                    .map(|(i, v)| {
                        tokens(v, version, true)
                            .map(|t| Pattern::from_tokens(t, Case::Sensitive))
                            .map_err(|m| scope.error(&at(i), m))
                    })
                    .collect::<Result<_, _>>()?,
            ),
            Base::Arn => Test::Arn(
                items
                    .map(|(i, v)| {
                        let t = tokens(v, version, true).map_err(|m| scope.error(&at(i), m))?;
                        v.starts_with("arn:")
                            .then(|| ArnPattern::from_tokens(&t))
                            .flatten()
                            .ok_or_else(|| {
                                scope.error(
                                    &at(i),
                                    format_args!(
                                        "'{}' is not an ARN (arn:partition:service:region:account:resource)",
                                        shown(v)
                                    ),
                                )
                            })
                    })
                    .collect::<Result<_, _>>()?,
            ),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn block(json: &str) -> Result<Vec<Condition>, PolicyError> {
        let value = Json::parse(json).unwrap();
        Condition::parse_block(
            &value,
            &super::super::syntax::tests_scope("Statement[2]"),
            Version::V2012,
        )
    }

    fn values(pairs: &[(&str, &[&str])]) -> HashMap<String, Vec<String>> {
        pairs
            .iter()
            .map(|(k, vs)| (k.to_string(), vs.iter().map(|v| v.to_string()).collect()))
            .collect()
    }

    /// Whether all conditions of `json` hold for a request with `pairs`.
    fn holds(json: &str, pairs: &[(&str, &[&str])]) -> bool {
        let conditions = block(json).unwrap();
        let map = values(pairs);
        let request = RequestContext {
            action: "kms:Encrypt",
            principal: "arn:aws:iam::111122223333:user/alice",
            principal_account: "111122223333",
            resource: "arn:aws:kms:us-east-1:111122223333:key/k",
            conditions: &map,
        };
        conditions.iter().all(|c| c.holds(&request))
    }

    const EC: &str = "kms:EncryptionContext:tenant";

    #[test]
    fn string_equals() {
        let c = r#"{"StringEquals": {"kms:EncryptionContext:tenant": "42"}}"#;
        assert!(holds(c, &[(EC, &["42"])]));
        assert!(!holds(c, &[(EC, &["43"])]));
        assert!(!holds(c, &[(EC, &["4"])]));
        assert!(!holds(c, &[]));
        // Values ORed.
        let c = r#"{"StringEquals": {"kms:EncryptionContext:tenant": ["41", "42"]}}"#;
        assert!(holds(c, &[(EC, &["42"])]));
        assert!(holds(c, &[(EC, &["41"])]));
        assert!(!holds(c, &[(EC, &["40"])]));
        // Case-sensitive values; `*` is literal.
        assert!(!holds(
            r#"{"StringEquals": {"kms:KeySpec": "symmetric_default"}}"#,
            &[("kms:KeySpec", &["SYMMETRIC_DEFAULT"])]
        ));
        assert!(!holds(
            r#"{"StringEquals": {"kms:KeySpec": "*"}}"#,
            &[("kms:KeySpec", &["RSA_2048"])]
        ));
        assert!(holds(
            r#"{"StringEquals": {"kms:KeySpec": "*"}}"#,
            &[("kms:KeySpec", &["*"])]
        ));
    }

    #[test]
    fn string_not_equals() {
        let c = r#"{"StringNotEquals": {"kms:CallerAccount": ["111122223333", "444455556666"]}}"#;
        assert!(!holds(c, &[("kms:CallerAccount", &["111122223333"])]));
        assert!(!holds(c, &[("kms:CallerAccount", &["444455556666"])]));
        assert!(holds(c, &[("kms:CallerAccount", &["777788889999"])]));
        // Absent key: a negated operator holds.
        let c = r#"{"StringNotEquals": {"kms:RequestAlias": "alias/x"}}"#;
        assert!(holds(c, &[]));
    }

    #[test]
    fn string_equals_ignore_case() {
        let c = r#"{"StringEqualsIgnoreCase": {"kms:RequestAlias": "alias/Orders"}}"#;
        assert!(holds(c, &[("kms:RequestAlias", &["ALIAS/ORDERS"])]));
        assert!(holds(c, &[("kms:RequestAlias", &["alias/orders"])]));
        assert!(!holds(c, &[("kms:RequestAlias", &["alias/order"])]));
        let c = r#"{"StringEqualsIgnoreCase": {"kms:EncryptionContext:city": "ZÜRICH"}}"#;
        assert!(holds(c, &[("kms:EncryptionContext:city", &["zürich"])]));
        let c = r#"{"StringNotEqualsIgnoreCase": {"kms:RequestAlias": "alias/Orders"}}"#;
        assert!(!holds(c, &[("kms:RequestAlias", &["ALIAS/orders"])]));
        assert!(holds(c, &[("kms:RequestAlias", &["alias/other"])]));
        assert!(holds(c, &[]));
    }

    #[test]
    fn string_like() {
        let c = r#"{"StringLike": {"kms:RequestAlias": ["alias/app-*", "alias/db-??"]}}"#;
        assert!(holds(c, &[("kms:RequestAlias", &["alias/app-orders"])]));
        assert!(holds(c, &[("kms:RequestAlias", &["alias/app-"])]));
        assert!(holds(c, &[("kms:RequestAlias", &["alias/db-01"])]));
        assert!(!holds(c, &[("kms:RequestAlias", &["alias/db-1"])]));
        assert!(!holds(c, &[("kms:RequestAlias", &["alias/App-orders"])]));
        assert!(!holds(c, &[]));
        let c = r#"{"StringNotLike": {"kms:RequestAlias": "alias/app-*"}}"#;
        assert!(!holds(c, &[("kms:RequestAlias", &["alias/app-x"])]));
        assert!(holds(c, &[("kms:RequestAlias", &["alias/db"])]));
        assert!(holds(c, &[]));
        // ${*} is a literal star under 2012-10-17.
        let c = r#"{"StringLike": {"kms:RequestAlias": "alias/${*}"}}"#;
        assert!(holds(c, &[("kms:RequestAlias", &["alias/*"])]));
        assert!(!holds(c, &[("kms:RequestAlias", &["alias/x"])]));
    }

    #[test]
    fn arn_operators() {
        let c = r#"{"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/Admin*"}}"#;
        assert!(holds(
            c,
            &[(
                "aws:PrincipalArn",
                &["arn:aws:iam::111122223333:role/AdminX"]
            )]
        ));
        assert!(!holds(
            c,
            &[(
                "aws:PrincipalArn",
                &["arn:aws:iam::111122223333:user/Admin"]
            )]
        ));
        let c = r#"{"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/alice"}}"#;
        // Falls back to the request's principal.
        assert!(holds(c, &[]));
        let c = r#"{"ArnNotLike": {"aws:PrincipalArn": "arn:aws:iam::111122223333:user/*"}}"#;
        assert!(!holds(c, &[]));
        assert!(holds(
            c,
            &[("aws:PrincipalArn", &["arn:aws:iam::111122223333:role/r"])]
        ));
        let c = r#"{"ArnNotEquals": {"aws:SourceArn": "arn:aws:s3:::bucket"}}"#;
        assert!(holds(c, &[]));
        assert!(!holds(c, &[("aws:SourceArn", &["arn:aws:s3:::bucket"])]));
    }

    #[test]
    fn bool_operator() {
        let c = r#"{"Bool": {"kms:GrantIsForAWSResource": "true"}}"#;
        assert!(holds(c, &[("kms:GrantIsForAWSResource", &["true"])]));
        assert!(holds(c, &[("kms:GrantIsForAWSResource", &["TRUE"])]));
        assert!(!holds(c, &[("kms:GrantIsForAWSResource", &["false"])]));
        assert!(!holds(c, &[("kms:GrantIsForAWSResource", &["yes"])]));
        assert!(!holds(c, &[]));
        let c = r#"{"Bool": {"kms:GrantIsForAWSResource": false}}"#;
        assert!(holds(c, &[("kms:GrantIsForAWSResource", &["false"])]));
        assert!(!holds(c, &[("kms:GrantIsForAWSResource", &["true"])]));
        let c = r#"{"BoolIfExists": {"kms:GrantIsForAWSResource": "true"}}"#;
        assert!(holds(c, &[]));
        assert!(!holds(c, &[("kms:GrantIsForAWSResource", &["false"])]));
    }

    #[test]
    fn null_operator() {
        let absent = r#"{"Null": {"kms:EncryptionContext:tenant": "true"}}"#;
        let present = r#"{"Null": {"kms:EncryptionContext:tenant": "false"}}"#;
        assert!(holds(absent, &[]));
        assert!(!holds(absent, &[(EC, &["42"])]));
        assert!(!holds(present, &[]));
        assert!(holds(present, &[(EC, &["42"])]));
        // An empty multi-valued key counts as absent.
        assert!(holds(absent, &[(EC, &[])]));
        assert!(holds(
            r#"{"Null": {"kms:EncryptionContextKeys": true}}"#,
            &[("kms:EncryptionContextKeys", &[])]
        ));
        // Both listed: always true.
        let either = r#"{"Null": {"kms:EncryptionContext:tenant": ["true", "false"]}}"#;
        assert!(holds(either, &[]) && holds(either, &[(EC, &["1"])]));
        // Falls back to the request for the principal keys.
        assert!(holds(r#"{"Null": {"aws:PrincipalArn": "false"}}"#, &[]));
    }

    #[test]
    fn if_exists() {
        let c = r#"{"StringEqualsIfExists": {"kms:EncryptionContext:tenant": "42"}}"#;
        assert!(holds(c, &[]));
        assert!(holds(c, &[(EC, &["42"])]));
        assert!(!holds(c, &[(EC, &["43"])]));
        let c = r#"{"StringLikeIfExists": {"kms:RequestAlias": "alias/a*"}}"#;
        assert!(holds(c, &[]));
        assert!(!holds(c, &[("kms:RequestAlias", &["alias/b"])]));
        let c = r#"{"StringNotEqualsIfExists": {"kms:RequestAlias": "alias/a"}}"#;
        assert!(holds(c, &[]));
        assert!(!holds(c, &[("kms:RequestAlias", &["alias/a"])]));
        let c = r#"{"ForAnyValue:StringEqualsIfExists": {"kms:EncryptionContextKeys": "a"}}"#;
        assert!(holds(c, &[]));
        assert!(!holds(c, &[("kms:EncryptionContextKeys", &["b"])]));
    }

    const KEYS: &str = "kms:EncryptionContextKeys";

    #[test]
    fn for_all_values() {
        let c =
            r#"{"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": ["tenant", "order"]}}"#;
        assert!(holds(c, &[(KEYS, &["tenant"])]));
        assert!(holds(c, &[(KEYS, &["tenant", "order"])]));
        assert!(!holds(c, &[(KEYS, &["tenant", "user"])]));
        // Absent or empty: true.
        assert!(holds(c, &[]));
        assert!(holds(c, &[(KEYS, &[])]));
        let c = r#"{"ForAllValues:StringNotEquals": {"kms:EncryptionContextKeys": ["secret"]}}"#;
        assert!(holds(c, &[(KEYS, &["a", "b"])]));
        assert!(!holds(c, &[(KEYS, &["a", "secret"])]));
        assert!(holds(c, &[]));
        let c = r#"{"ForAllValues:StringLike": {"kms:GrantOperations": ["Encrypt", "Decrypt", "GenerateDataKey*"]}}"#;
        assert!(holds(
            c,
            &[(
                "kms:GrantOperations",
                &["Decrypt", "GenerateDataKeyWithoutPlaintext"]
            )]
        ));
        assert!(!holds(
            c,
            &[("kms:GrantOperations", &["Decrypt", "CreateGrant"])]
        ));
    }

    #[test]
    fn for_any_value() {
        let c =
            r#"{"ForAnyValue:StringEquals": {"kms:EncryptionContextKeys": ["tenant", "order"]}}"#;
        assert!(holds(c, &[(KEYS, &["x", "order"])]));
        assert!(!holds(c, &[(KEYS, &["x", "y"])]));
        // Absent or empty: false.
        assert!(!holds(c, &[]));
        assert!(!holds(c, &[(KEYS, &[])]));
        let c = r#"{"ForAnyValue:StringNotEquals": {"kms:EncryptionContextKeys": ["tenant"]}}"#;
        assert!(holds(c, &[(KEYS, &["tenant", "x"])]));
        assert!(!holds(c, &[(KEYS, &["tenant"])]));
        assert!(!holds(c, &[]));
        let c = r#"{"ForAnyValue:StringLike": {"kms:GrantOperations": "*Grant"}}"#;
        assert!(holds(
            c,
            &[("kms:GrantOperations", &["Decrypt", "RetireGrant"])]
        ));
        assert!(!holds(c, &[("kms:GrantOperations", &["Decrypt"])]));
    }

    #[test]
    fn plain_operator_on_a_multi_valued_key_means_any() {
        let c = r#"{"StringEquals": {"kms:GrantOperations": "Decrypt"}}"#;
        assert!(holds(
            c,
            &[("kms:GrantOperations", &["Encrypt", "Decrypt"])]
        ));
        let c = r#"{"StringNotEquals": {"kms:GrantOperations": "Decrypt"}}"#;
        assert!(!holds(
            c,
            &[("kms:GrantOperations", &["Encrypt", "Decrypt"])]
        ));
        assert!(holds(c, &[("kms:GrantOperations", &["Encrypt"])]));
    }

    #[test]
    fn keys_and_operators_are_anded() {
        let c = r#"{
            "StringEquals": {"kms:EncryptionContext:tenant": "42", "kms:CallerAccount": "111122223333"},
            "StringLike": {"kms:RequestAlias": "alias/*"}
        }"#;
        assert!(holds(
            c,
            &[(EC, &["42"]), ("kms:RequestAlias", &["alias/a"])]
        ));
        assert!(!holds(c, &[(EC, &["42"])]));
        assert!(!holds(c, &[(EC, &["42"]), ("kms:RequestAlias", &["x"])]));
        assert!(!holds(
            c,
            &[
                (EC, &["42"]),
                ("kms:RequestAlias", &["alias/a"]),
                ("kms:CallerAccount", &["444455556666"])
            ]
        ));
    }

    #[test]
    fn key_names_are_case_insensitive_but_context_keys_are_not() {
        let c = r#"{"StringEquals": {"KMS:callerACCOUNT": "111122223333"}}"#;
        assert!(holds(c, &[("kms:CallerAccount", &["111122223333"])]));
        let c = r#"{"StringEquals": {"KMS:encryptioncontext:Tenant": "42"}}"#;
        assert!(holds(c, &[("kms:EncryptionContext:Tenant", &["42"])]));
        assert!(!holds(c, &[("kms:EncryptionContext:tenant", &["42"])]));
    }

    #[test]
    fn principal_keys_fall_back_to_the_request() {
        assert!(holds(
            r#"{"StringEquals": {"kms:CallerAccount": "111122223333"}}"#,
            &[]
        ));
        assert!(holds(
            r#"{"StringEquals": {"aws:PrincipalAccount": "111122223333"}}"#,
            &[]
        ));
        assert!(holds(
            r#"{"StringLike": {"aws:principalarn": "arn:aws:iam::111122223333:user/*"}}"#,
            &[]
        ));
        // A supplied value wins over the fallback.
        assert!(!holds(
            r#"{"StringEquals": {"kms:CallerAccount": "111122223333"}}"#,
            &[("kms:CallerAccount", &["444455556666"])]
        ));
    }

    #[test]
    fn numbers_and_booleans_are_compared_as_text() {
        let c = r#"{"StringEquals": {"kms:EncryptionContext:n": 42}}"#;
        assert!(holds(c, &[("kms:EncryptionContext:n", &["42"])]));
        let c = r#"{"StringEquals": {"kms:EncryptionContext:b": [true, "x"]}}"#;
        assert!(holds(c, &[("kms:EncryptionContext:b", &["true"])]));
    }

    #[test]
    fn key_canonicalisation() {
        let k = Key::parse("KMS:ENCRYPTIONCONTEXTKEYS").unwrap();
        assert_eq!(&*k.name, "kms:EncryptionContextKeys");
        let k = Key::parse("Kms:EncryptionContext:Dept").unwrap();
        assert_eq!(&*k.name, "kms:EncryptionContext:Dept");
        let k = Key::parse("aws:resourcetag/Project").unwrap();
        assert_eq!(&*k.name, "aws:ResourceTag/Project");
        let k = Key::parse("aws:SomethingNew").unwrap();
        assert_eq!(&*k.name, "aws:SomethingNew");
        assert_eq!(
            Key::parse("AWS:PRINCIPALARN").unwrap().fallback,
            Some(Fallback::PrincipalArn)
        );
        assert!(Key::parse("kms:EncryptionContext:").is_err());
        assert!(Key::parse("kms:").is_err());
        assert!(Key::parse("s3:prefix").is_err());
        assert!(Key::parse("CallerAccount").is_err());
        assert!(Key::parse("kms:Caller Account").is_err());
        assert!(Key::parse("kms:EncryptionContext:é").is_ok());
        assert!(Key::parse("kms:EncryptionContéxt").is_ok());
    }

    #[test]
    fn operator_names() {
        assert_eq!(
            Operator::parse("ForAllValues:StringNotLikeIfExists").unwrap(),
            Operator::Compare {
                base: Base::Like,
                negated: true,
                quantifier: Quantifier::AllValues,
                if_exists: true
            }
        );
        assert_eq!(Operator::parse("Null").unwrap(), Operator::Null);
        for (name, expected) in [
            (
                "StringEqualz",
                "unknown operator 'StringEqualz' (did you mean 'StringEquals'?)",
            ),
            (
                "stringequals",
                "unknown operator 'stringequals' (did you mean 'StringEquals'?)",
            ),
            ("NullIfExists", "Null cannot take IfExists"),
            (
                "ForAnyValue:Null",
                "Null cannot take ForAllValues or ForAnyValue",
            ),
            (
                "NumericLessThan",
                "operator 'NumericLessThan' is not supported",
            ),
            ("DateGreaterThanIfExists", "is not supported"),
            (
                "ForSomeValues:StringEquals",
                "set qualifiers are ForAllValues: and ForAnyValue:",
            ),
            ("IfExists", "unknown operator 'IfExists'"),
            ("", "unknown operator ''"),
        ] {
            let err = Operator::parse(name).unwrap_err();
            assert!(err.contains(expected), "{name}: {err}");
        }
    }

    #[test]
    fn invalid_blocks_are_refused_with_their_place() {
        let cases = [
            (r#"{"StringEqualz": {"kms:CallerAccount": "1"}}"#, "Statement[2].Condition: unknown operator 'StringEqualz'"),
            (r#"[]"#, "Statement[2].Condition: must be an object"),
            (r#"{}"#, "Statement[2].Condition: must not be empty"),
            (r#"{"StringEquals": {}}"#, "Statement[2].Condition.StringEquals: must name at least one condition key"),
            (r#"{"StringEquals": "kms:CallerAccount"}"#, "Statement[2].Condition.StringEquals: must be an object mapping condition keys to values, found a string"),
            (r#"{"StringEquals": {"ec2:Region": "x"}}"#, "Statement[2].Condition.StringEquals: condition key 'ec2:Region' is not supported"),
            (r#"{"StringEquals": {"kms:EncryptionContext:": "x"}}"#, "needs a name after 'kms:EncryptionContext:'"),
            (r#"{"StringEquals": {"kms:CallerAccount": []}}"#, "Statement[2].Condition.StringEquals.kms:CallerAccount: must not be an empty array"),
            (r#"{"StringEquals": {"kms:CallerAccount": null}}"#, "Statement[2].Condition.StringEquals.kms:CallerAccount: must be a string or an array of strings, found null"),
            (r#"{"StringEquals": {"kms:CallerAccount": ["1", {}]}}"#, "Statement[2].Condition.StringEquals.kms:CallerAccount[1]: must be a string, found an object"),
            (r#"{"Bool": {"kms:GrantIsForAWSResource": "yes"}}"#, "Statement[2].Condition.Bool.kms:GrantIsForAWSResource: must be \"true\" or \"false\", found 'yes'"),
            (r#"{"Null": {"kms:RequestAlias": ["true", 1]}}"#, "Statement[2].Condition.Null.kms:RequestAlias[1]: must be \"true\" or \"false\", found '1'"),
            (r#"{"ArnLike": {"aws:PrincipalArn": "role/*"}}"#, "Statement[2].Condition.ArnLike.aws:PrincipalArn: 'role/*' is not an ARN"),
            (r#"{"StringEquals": {"kms:EncryptionContext:user": "${aws:username}"}}"#, "Statement[2].Condition.StringEquals.kms:EncryptionContext:user: policy variable '${aws:username}' is not supported"),
        ];
        for (json, expected) in cases {
            let err = block(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }
}
