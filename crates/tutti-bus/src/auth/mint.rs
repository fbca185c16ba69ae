//! Issuing the JWTs of tutti's broker identity from [`BrokerAuth`]: the operator, the two
//! accounts, and users of the tutti account with the permissions and limits the caller
//! chooses ([`UserPermissions`], [`UserLimits`]).
//!
//! Users of the tutti account are signed by the account's signing key with
//! `issuer_account` naming the account, as `nsc` does; revoking a user is a new account JWT
//! with the user's key in `revocations`, pushed with [`super::push_account_jwt`].

use nkeys::KeyPair;

use super::claims::{
    Account, AccountLimits, CLAIM_VERSION, Claims, NO_LIMIT, Nats, Operator, Permission,
    Permissions, ResponsePermission, User,
};
use super::creds::creds;
use super::jwt::{self, JwtError};
use super::keys::BrokerAuth;

/// What a user may publish and subscribe to. All lists empty means everything: the broker
/// then applies the account's default permissions, which tutti's account leaves open, so a
/// restricted user must name what it may do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPermissions {
    /// Subjects the user may publish to (wildcards allowed).
    pub publish_allow: Vec<String>,
    /// Subjects the user may not publish to, winning over `publish_allow`.
    pub publish_deny: Vec<String>,
    /// Subjects the user may subscribe to.
    pub subscribe_allow: Vec<String>,
    /// Subjects the user may not subscribe to, winning over `subscribe_allow`.
    pub subscribe_deny: Vec<String>,
    /// nats-server `allow_responses`: up to this many replies to the reply subject of each
    /// message received, within the broker's default 2 minutes. `None`: no such allowance.
    pub allow_responses: Option<u32>,
}

impl UserPermissions {
    /// Everything allowed (the server's own user, test harness users).
    pub fn full() -> UserPermissions {
        UserPermissions::default()
    }
}

/// Per-connection limits of a user; `None` is unlimited. `Some(0)` means none at all: for
/// `subs` the broker closes the connection as soon as it is at its limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserLimits {
    /// Subscriptions.
    pub subs: Option<u64>,
    /// Largest message payload in bytes.
    pub payload: Option<u64>,
    /// Bytes in flight.
    pub data: Option<u64>,
}

impl UserLimits {
    /// No limits beyond the account's and the broker's own.
    pub fn unlimited() -> UserLimits {
        UserLimits::default()
    }
}

impl BrokerAuth {
    /// The self-signed operator JWT naming the system account (the broker config's
    /// `operator`).
    pub fn operator_jwt(&self) -> String {
        let nats = Nats::Operator(Operator {
            signing_keys: Vec::new(),
            system_account: Some(self.system_account_public_key()),
            version: CLAIM_VERSION,
        });
        let claims = Claims::new(self.operator_public_key(), "tutti", nats);
        sign(claims, &self.operator)
    }

    /// The system account's JWT: unlimited, without JetStream (the broker's own traffic).
    pub fn system_account_jwt(&self) -> String {
        let account = account_nats(AccountLimits::unlimited(false), Vec::new(), &[]);
        let claims = Claims::new(self.system_account_public_key(), "SYS", account);
        sign(claims, &self.operator)
    }

    /// The tutti account's JWT: unlimited with JetStream, the signing key listed, and
    /// `revocations` as (user public key, unix seconds) pairs; a user JWT issued at or
    /// before its time is refused, and open connections of that user are closed when the
    /// broker receives this JWT.
    pub fn account_jwt(&self, revocations: &[(String, u64)]) -> String {
        let signing_keys = vec![self.account_signing_public_key()];
        let account = account_nats(AccountLimits::unlimited(true), signing_keys, revocations);
        let claims = Claims::new(self.account_public_key(), "tutti", account);
        sign(claims, &self.operator)
    }

    /// A user JWT in the tutti account for `user_public_key` (a `U...` key whose seed the
    /// user keeps), signed by the account signing key. Fails only for a key that is not a
    /// user public key.
    pub fn user_jwt(
        &self,
        user_public_key: &str,
        name: &str,
        permissions: &UserPermissions,
        limits: &UserLimits,
    ) -> Result<String, JwtError> {
        let user = User {
            issuer_account: Some(self.account_public_key()),
            ..user_nats(permissions, limits)
        };
        let claims = Claims::new(user_public_key, name, Nats::User(user));
        jwt::encode(claims, &self.account_signing)
    }

    /// Creds text for a new user of the tutti account whose key pair is generated here
    /// (the server's own connection, tests). Agents generate their key pair themselves
    /// and use [`BrokerAuth::user_jwt`] with [`super::creds_for_key_pair`] instead.
    pub fn mint_user_creds(
        &self,
        name: &str,
        permissions: &UserPermissions,
        limits: &UserLimits,
    ) -> String {
        let user = KeyPair::new_user();
        let user_jwt = self
            .user_jwt(&user.public_key(), name, permissions, limits)
            .expect("a freshly generated user key is a valid user public key");
        creds(&user_jwt, &seed_of(&user))
    }

    /// Creds text for a new, unrestricted user of the system account, for claim updates
    /// ([`super::push_account_jwt`]) and broker monitoring over `$SYS`.
    pub fn mint_system_user_creds(&self) -> String {
        let user = KeyPair::new_user();
        let nats = Nats::User(user_nats(
            &UserPermissions::full(),
            &UserLimits::unlimited(),
        ));
        let claims = Claims::new(user.public_key(), "tutti-system", nats);
        creds(&sign(claims, &self.system_account), &seed_of(&user))
    }
}

/// Signs claims whose issuer and subject kinds are right by construction with a key that
/// has a seed by construction ([`BrokerAuth`] only holds keys loaded from seeds).
fn sign(claims: Claims, issuer: &KeyPair) -> String {
    jwt::encode(claims, issuer).expect("BrokerAuth issues claims its keys may sign")
}

fn seed_of(key: &KeyPair) -> String {
    key.seed().expect("a freshly generated key pair has a seed")
}

fn account_nats(
    limits: AccountLimits,
    signing_keys: Vec<String>,
    revocations: &[(String, u64)],
) -> Nats {
    Nats::Account(Account {
        limits,
        signing_keys,
        revocations: revocations
            .iter()
            .map(|(user, at)| (user.clone(), i64::try_from(*at).unwrap_or(i64::MAX)))
            .collect(),
        default_permissions: Permissions::default(),
        version: CLAIM_VERSION,
    })
}

fn user_nats(permissions: &UserPermissions, limits: &UserLimits) -> User {
    User {
        publish: Permission {
            allow: permissions.publish_allow.clone(),
            deny: permissions.publish_deny.clone(),
        },
        subscribe: Permission {
            allow: permissions.subscribe_allow.clone(),
            deny: permissions.subscribe_deny.clone(),
        },
        resp: permissions.allow_responses.map(|max| ResponsePermission {
            max: i64::from(max),
            ttl: 0,
        }),
        subs: limit(limits.subs),
        data: limit(limits.data),
        payload: limit(limits.payload),
        bearer_token: false,
        issuer_account: None,
        version: CLAIM_VERSION,
    }
}

fn limit(value: Option<u64>) -> i64 {
    value.map_or(NO_LIMIT, |value| i64::try_from(value).unwrap_or(i64::MAX))
}
