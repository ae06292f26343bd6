//! Compiled statements and the decision over them.
//!
//! A statement applies when its principal, action, resource and conditions all match (the cheap
//! string tests first, conditions last). Any applying `Deny` decides at once; once some `Allow`
//! applies, later `Allow` statements are skipped and only `Deny` statements are still checked.

use super::action::Actions;
use super::condition::Condition;
use super::principal::Principals;
use super::resource::Resources;
use super::types::{Decision, RequestContext};

/// A statement's `Effect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    Allow,
    Deny,
}

/// One validated, compiled statement. Each `not_*` flag says the element was written in its `Not`
/// form (`NotPrincipal`, `NotAction`, `NotResource`): the statement is about everything else.
#[derive(Clone, Debug)]
pub(crate) struct Statement {
    pub(crate) effect: Effect,
    pub(crate) principals: Principals,
    pub(crate) not_principal: bool,
    pub(crate) actions: Actions,
    pub(crate) not_action: bool,
    pub(crate) resources: Resources,
    pub(crate) not_resource: bool,
    pub(crate) conditions: Vec<Condition>,
}

impl Statement {
    /// Whether this statement is about `request`.
    pub(crate) fn applies(&self, request: &RequestContext<'_>) -> bool {
        self.actions.matches(request.action) != self.not_action
            && self.principals.matches(request) != self.not_principal
            && self.resources.matches(request.resource) != self.not_resource
            && self.conditions.iter().all(|c| c.holds(request))
    }
}

/// Explicit `Deny` wins, then `Allow`, otherwise the request is implicitly denied.
pub(crate) fn decide(statements: &[Statement], request: &RequestContext<'_>) -> Decision {
    let mut allowed = false;
    for statement in statements {
        match statement.effect {
            Effect::Deny => {
                if statement.applies(request) {
                    return Decision::ExplicitDeny;
                }
            }
            Effect::Allow => {
                if !allowed && statement.applies(request) {
                    allowed = true;
                }
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

#[cfg(test)]
mod tests {
    use super::super::KeyPolicy;
    use super::*;

    fn request(action: &str) -> RequestContext<'_> {
        RequestContext {
            action,
            principal: "arn:aws:iam::111122223333:user/alice",
            principal_account: "111122223333",
            resource: "arn:aws:kms:us-east-1:111122223333:key/k",
            conditions: &(),
        }
    }

    fn statement(effect: &str, action: &str) -> String {
        format!(
            r#"{{"Effect": "{effect}", "Principal": "*", "Action": "{action}", "Resource": "*"}}"#
        )
    }

    #[test]
    fn deny_wins_in_any_order() {
        for statements in [
            [
                statement("Allow", "kms:*"),
                statement("Deny", "kms:Decrypt"),
            ],
            [
                statement("Deny", "kms:Decrypt"),
                statement("Allow", "kms:*"),
            ],
        ] {
            let doc = format!(
                r#"{{"Version": "2012-10-17", "Statement": [{}]}}"#,
                statements.join(",")
            );
            let policy = KeyPolicy::parse(&doc).unwrap();
            assert_eq!(
                policy.evaluate(&request("kms:Decrypt")),
                Decision::ExplicitDeny
            );
            assert_eq!(policy.evaluate(&request("kms:Encrypt")), Decision::Allow);
        }
    }

    #[test]
    fn nothing_applying_is_an_implicit_deny() {
        let doc = format!(r#"{{"Statement": {}}}"#, statement("Allow", "kms:Encrypt"));
        let policy = KeyPolicy::parse(&doc).unwrap();
        assert_eq!(
            policy.evaluate(&request("kms:Decrypt")),
            Decision::ImplicitDeny
        );
        let doc = format!(r#"{{"Statement": {}}}"#, statement("Deny", "kms:Encrypt"));
        let policy = KeyPolicy::parse(&doc).unwrap();
        assert_eq!(
            policy.evaluate(&request("kms:Decrypt")),
            Decision::ImplicitDeny
        );
    }
}
