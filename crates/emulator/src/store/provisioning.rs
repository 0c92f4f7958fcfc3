//! Fleet provisioning's registry: templates, certificates waiting for their
//! RegisterThing (with their one-hour ownership tokens), and the registration
//! itself, written all or nothing.
//!
//! * [`Store::create_template`] checks the body with
//!   [`ProvisioningTemplate::parse`] before storing it.
//! * [`Store::add_pending_certificate`] registers a certificate
//!   `PENDING_ACTIVATION` with its token.
//! * [`Store::register_thing`] uses the token up (once), creates or updates the
//!   thing, activates the certificate, attaches it to the thing and attaches
//!   the template's policies (creating those given by document).
//! * [`Store::remove_expired_tokens`] drops expired tokens and deletes their
//!   certificates if nothing activated or attached them (AWS: "If the
//!   certificate … has not been activated and has not been attached to a policy
//!   or a thing by the time the token expires, the certificate is deleted").

use std::collections::BTreeMap;

use iotcore_model::provisioning::{TemplateNameError, validate_template_name};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::certificates::insert_certificate;
use super::policies::{insert_attachment, insert_policy};
use super::things::{insert_thing, validate_attribute};
use super::{CertificateStatus, Store, StoreError, now_unix, validate_thing_name};
use crate::provisioning::{ProvisioningTemplate, TemplateProblem};

/// What to do with a property of a thing that already exists (a template's
/// `OverrideSettings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Override {
    /// `DO_NOTHING`: keep the existing value (the emulator's default).
    #[default]
    DoNothing,
    /// `REPLACE`: the template's value replaces it.
    Replace,
    /// `FAIL`: a different value fails the registration.
    Fail,
    /// `MERGE` (attributes only): the template's attributes are added to the
    /// existing ones, replacing those of the same name.
    Merge,
}

impl Override {
    /// Parses `DO_NOTHING`, `REPLACE`, `FAIL` or `MERGE`.
    pub fn parse(text: &str) -> Option<Override> {
        match text {
            "DO_NOTHING" => Some(Override::DoNothing),
            "REPLACE" => Some(Override::Replace),
            "FAIL" => Some(Override::Fail),
            "MERGE" => Some(Override::Merge),
            _ => None,
        }
    }
}

/// The override settings of a template's thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExistingThing {
    /// For `AttributePayload`.
    pub attributes: Override,
    /// For `ThingTypeName`.
    pub thing_type: Override,
}

/// The thing a registration creates or updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThingRegistration {
    /// Its name.
    pub name: String,
    /// Its type, if the template names one.
    pub thing_type: Option<String>,
    /// Its attributes, if the template has an `AttributePayload`.
    pub attributes: Option<BTreeMap<String, String>>,
    /// What to do if it exists.
    pub existing: ExistingThing,
}

/// A policy a registration attaches to the certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRegistration {
    /// The policy name.
    pub name: String,
    /// Its document, when the template gives one: the policy is created if it
    /// does not exist. `None`: the policy must exist.
    pub document: Option<String>,
}

/// What a successful RegisterThing writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The ownership token, used up by the registration.
    pub token: String,
    /// The token's certificate.
    pub certificate_id: String,
    /// The status the certificate gets (`ACTIVE` or `INACTIVE`).
    pub certificate_status: CertificateStatus,
    /// The thing.
    pub thing: ThingRegistration,
    /// The policies.
    pub policies: Vec<PolicyRegistration>,
}

/// A stored provisioning template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRecord {
    /// The template name.
    pub name: String,
    /// The JSON body as given.
    pub body: String,
    /// A description, if given.
    pub description: Option<String>,
    /// The pre-provisioning hook: a command run with `/bin/sh -c`, if any.
    pub hook_command: Option<String>,
    /// When it was created, unix seconds.
    pub created_at: i64,
    /// When it was last changed, unix seconds.
    pub updated_at: i64,
    /// Whether devices may provision with it (AWS's `enabled`).
    pub enabled: bool,
    /// AWS's `provisioningRoleArn`, kept as given.
    pub role_arn: Option<String>,
}

/// An ownership token waiting for its RegisterThing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The certificate it proves ownership of.
    pub certificate_id: String,
    /// The claim certificate of the connection that created it.
    pub claim_certificate_id: String,
    /// When it expires, unix seconds.
    pub expires_at: i64,
}

/// Why a template operation or a registration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The template name breaks AWS's rules.
    #[error(transparent)]
    InvalidName(#[from] TemplateNameError),
    /// The body is not a template the emulator takes.
    #[error("template {name:?} is refused: {problem}")]
    Invalid {
        /// The template name.
        name: String,
        /// What is wrong, naming the element at fault.
        problem: TemplateProblem,
    },
    /// A template with this name exists.
    #[error("template {0:?} already exists; change it with `iotcore template update`")]
    Exists(String),
    /// No template has this name.
    #[error("template {0:?} does not exist")]
    NotFound(String),
    /// The ownership token is unknown or was used (or its certificate is no
    /// longer waiting for activation).
    #[error("the ownership token is unknown or was already used")]
    TokenUsed,
    /// The thing exists and its override settings say `FAIL`.
    #[error("{0}")]
    Conflict(String),
    /// The registry refused (invalid names, missing policy, …) or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for TemplateError {
    fn from(e: rusqlite::Error) -> Self {
        TemplateError::Store(StoreError::Sqlite(e))
    }
}

const TEMPLATE_COLUMNS: &str =
    "name, body, description, hook_command, created_at, updated_at, enabled, role_arn";

fn template_from_row(row: &Row<'_>) -> rusqlite::Result<TemplateRecord> {
    Ok(TemplateRecord {
        name: row.get(0)?,
        body: row.get(1)?,
        description: row.get(2)?,
        hook_command: row.get(3)?,
        created_at: row.get(4)?,
        updated_at: row.get(5)?,
        enabled: row.get(6)?,
        role_arn: row.get(7)?,
    })
}

fn check_template(name: &str, body: &str) -> Result<ProvisioningTemplate, TemplateError> {
    validate_template_name(name)?;
    ProvisioningTemplate::parse(body).map_err(|problem| TemplateError::Invalid {
        name: name.to_owned(),
        problem,
    })
}

impl Store {
    /// Creates template `name` (CreateProvisioningTemplate) after checking the
    /// body; `hook_command` is its pre-provisioning hook. Returns the parsed
    /// template, whose [`ProvisioningTemplate::warnings`] say what the emulator ignores.
    pub fn create_template(
        &self,
        name: &str,
        body: &str,
        description: Option<&str>,
        hook_command: Option<&str>,
    ) -> Result<ProvisioningTemplate, TemplateError> {
        let template = check_template(name, body)?;
        let now = now_unix();
        let inserted = self.conn().execute(
            "INSERT INTO provisioning_templates (name, body, description, hook_command, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5) ON CONFLICT (name) DO NOTHING",
            params![name, body, description, hook_command, now],
        )?;
        if inserted == 0 {
            return Err(TemplateError::Exists(name.to_owned()));
        }
        Ok(template)
    }

    /// Replaces template `name`'s body (checked first) and hook
    /// (UpdateProvisioningTemplate). Registrations already made are kept.
    pub fn update_template(
        &self,
        name: &str,
        body: &str,
        hook_command: Option<&str>,
    ) -> Result<ProvisioningTemplate, TemplateError> {
        let template = check_template(name, body)?;
        let updated = self.conn().execute(
            "UPDATE provisioning_templates SET body = ?2, hook_command = ?3, updated_at = ?4 WHERE name = ?1",
            params![name, body, hook_command, now_unix()],
        )?;
        if updated == 0 {
            return Err(TemplateError::NotFound(name.to_owned()));
        }
        Ok(template)
    }

    /// Changes a template's settings (UpdateProvisioningTemplate): each
    /// `Some` replaces the current value (`description: Some(None)` removes
    /// it; `hook_command: Some(None)` removes the hook).
    pub fn update_template_settings(
        &self,
        name: &str,
        description: Option<Option<&str>>,
        enabled: Option<bool>,
        role_arn: Option<&str>,
        hook_command: Option<Option<&str>>,
    ) -> Result<(), TemplateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let exists = tx
            .query_row(
                "SELECT 1 FROM provisioning_templates WHERE name = ?1",
                [name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        if !exists {
            return Err(TemplateError::NotFound(name.to_owned()));
        }
        if let Some(description) = description {
            tx.execute(
                "UPDATE provisioning_templates SET description = ?2 WHERE name = ?1",
                params![name, description],
            )?;
        }
        if let Some(enabled) = enabled {
            tx.execute(
                "UPDATE provisioning_templates SET enabled = ?2 WHERE name = ?1",
                params![name, enabled],
            )?;
        }
        if let Some(role_arn) = role_arn {
            tx.execute(
                "UPDATE provisioning_templates SET role_arn = ?2 WHERE name = ?1",
                params![name, role_arn],
            )?;
        }
        if let Some(hook_command) = hook_command {
            tx.execute(
                "UPDATE provisioning_templates SET hook_command = ?2 WHERE name = ?1",
                params![name, hook_command],
            )?;
        }
        tx.execute(
            "UPDATE provisioning_templates SET updated_at = ?2 WHERE name = ?1",
            params![name, now_unix()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The template `name`, if it exists.
    pub fn template(&self, name: &str) -> Result<Option<TemplateRecord>, StoreError> {
        let sql = format!("SELECT {TEMPLATE_COLUMNS} FROM provisioning_templates WHERE name = ?1");
        Ok(self
            .conn()
            .query_row(&sql, [name], template_from_row)
            .optional()?)
    }

    /// Every template, sorted by name.
    pub fn list_templates(&self) -> Result<Vec<TemplateRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {TEMPLATE_COLUMNS} FROM provisioning_templates ORDER BY name"
        ))?;
        let templates = stmt
            .query_map([], template_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(templates)
    }

    /// Deletes template `name`. Returns `false` if it did not exist. Things
    /// and certificates it registered stay.
    pub fn delete_template(&self, name: &str) -> Result<bool, StoreError> {
        let deleted = self
            .conn()
            .execute("DELETE FROM provisioning_templates WHERE name = ?1", [name])?;
        Ok(deleted > 0)
    }

    /// Registers a certificate made by CreateKeysAndCertificate or
    /// CreateCertificateFromCsr as `PENDING_ACTIVATION`, with the ownership
    /// `token` that lets a RegisterThing use it until `expires_at` (unix
    /// seconds). All or nothing.
    pub fn add_pending_certificate(
        &self,
        certificate_id: &str,
        certificate_pem: &str,
        token: &str,
        claim_certificate_id: &str,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        insert_certificate(
            &tx,
            certificate_id,
            certificate_pem,
            CertificateStatus::PendingActivation,
        )?;
        tx.execute(
            "INSERT INTO provisioning_tokens (token, certificate_id, claim_certificate_id, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![token, certificate_id, claim_certificate_id, expires_at],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Registers a claim certificate `ACTIVE` and attaches policy `policy` to
    /// it, creating the policy with `document` if it does not exist. All or nothing.
    pub fn add_claim_certificate(
        &self,
        certificate_id: &str,
        certificate_pem: &str,
        policy: &str,
        document: &str,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        insert_certificate(
            &tx,
            certificate_id,
            certificate_pem,
            CertificateStatus::Active,
        )?;
        if !policy_exists(&tx, policy)? {
            insert_policy(&tx, policy, document)?;
        }
        insert_attachment(&tx, policy, certificate_id)?;
        tx.commit()?;
        Ok(())
    }

    /// The ownership token `token`, if it exists (expired or not).
    pub fn ownership_token(&self, token: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT certificate_id, claim_certificate_id, expires_at FROM provisioning_tokens WHERE token = ?1",
                [token],
                |row| {
                    Ok(TokenRecord {
                        certificate_id: row.get(0)?,
                        claim_certificate_id: row.get(1)?,
                        expires_at: row.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Deletes the tokens expired at `now` (unix seconds), and their
    /// certificates that are still `PENDING_ACTIVATION` and attached to no
    /// thing and no policy. Returns the ids of the certificates deleted.
    pub fn remove_expired_tokens(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let certificates: Vec<String> = tx
            .prepare("SELECT certificate_id FROM provisioning_tokens WHERE expires_at <= ?1")?
            .query_map([now], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        tx.execute(
            "DELETE FROM provisioning_tokens WHERE expires_at <= ?1",
            [now],
        )?;
        let mut deleted = Vec::new();
        for id in certificates {
            let removed = tx.execute(
                "DELETE FROM certificates WHERE id = ?1 AND status = 'PENDING_ACTIVATION'
                 AND NOT EXISTS (SELECT 1 FROM thing_principals WHERE certificate_id = ?1)
                 AND NOT EXISTS (SELECT 1 FROM policy_principals WHERE certificate_id = ?1)",
                [&id],
            )?;
            if removed > 0 {
                deleted.push(id);
            }
        }
        tx.commit()?;
        Ok(deleted)
    }

    /// Writes a RegisterThing, all or nothing: uses the token up (it must
    /// exist and its certificate be `PENDING_ACTIVATION`, else
    /// [`TemplateError::TokenUsed`]), creates the thing or applies the
    /// override settings to the existing one, sets the certificate's status,
    /// attaches it to the thing, and attaches each policy (creating those
    /// with a document that do not exist yet).
    pub fn register_thing(&self, registration: &Registration) -> Result<(), TemplateError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let used = tx.execute(
            "DELETE FROM provisioning_tokens WHERE token = ?1 AND certificate_id = ?2",
            params![registration.token, registration.certificate_id],
        )?;
        let activated = tx.execute(
            "UPDATE certificates SET status = ?2 WHERE id = ?1 AND status = 'PENDING_ACTIVATION'",
            params![registration.certificate_id, registration.certificate_status],
        )?;
        if used == 0 || activated == 0 {
            return Err(TemplateError::TokenUsed);
        }
        upsert_thing(&tx, &registration.thing)?;
        tx.execute(
            "INSERT INTO thing_principals (thing_name, certificate_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
            [&registration.thing.name, &registration.certificate_id],
        )?;
        for policy in &registration.policies {
            if let Some(document) = &policy.document {
                if !policy_exists(&tx, &policy.name)? {
                    insert_policy(&tx, &policy.name, document)?;
                }
            }
            insert_attachment(&tx, &policy.name, &registration.certificate_id)?;
        }
        tx.commit()?;
        Ok(())
    }
}

fn policy_exists(conn: &Connection, name: &str) -> rusqlite::Result<bool> {
    conn.query_row("SELECT 1 FROM policies WHERE name = ?1", [name], |_| Ok(()))
        .optional()
        .map(|row| row.is_some())
}

/// Creates the thing, or applies the override settings to the existing one.
fn upsert_thing(conn: &Connection, thing: &ThingRegistration) -> Result<(), TemplateError> {
    let existing = conn
        .query_row(
            "SELECT thing_type, attributes FROM things WHERE name = ?1",
            [&thing.name],
            |row| Ok((row.get::<_, Option<String>>(0)?, row.get::<_, String>(1)?)),
        )
        .optional()?;
    let Some((current_type, current_attributes)) = existing else {
        let attributes = thing.attributes.clone().unwrap_or_default();
        insert_thing(conn, &thing.name, thing.thing_type.as_deref(), &attributes)?;
        return Ok(());
    };
    let current_attributes: BTreeMap<String, String> = serde_json::from_str(&current_attributes)
        .map_err(|e| StoreError::Sqlite(super::conversion_error(1, e)))?;
    let conflict = |what: &str| {
        TemplateError::Conflict(format!(
            "thing {} exists with another {what} and the template's OverrideSettings say FAIL",
            thing.name
        ))
    };
    let attributes = match (&thing.attributes, thing.existing.attributes) {
        (None, _) | (Some(_), Override::DoNothing) => current_attributes.clone(),
        (Some(new), Override::Replace) => new.clone(),
        (Some(new), Override::Merge) => {
            let mut merged = current_attributes.clone();
            merged.extend(new.clone());
            merged
        }
        (Some(new), Override::Fail) if *new != current_attributes => {
            return Err(conflict("AttributePayload"));
        }
        (Some(_), Override::Fail) => current_attributes.clone(),
    };
    let thing_type = match (&thing.thing_type, thing.existing.thing_type) {
        (None, _) | (Some(_), Override::DoNothing) => current_type.clone(),
        (Some(new), Override::Replace | Override::Merge) => Some(new.clone()),
        (Some(new), Override::Fail) if current_type.as_ref() != Some(new) => {
            return Err(conflict("ThingTypeName"));
        }
        (Some(_), Override::Fail) => current_type.clone(),
    };
    if attributes == current_attributes && thing_type == current_type {
        return Ok(());
    }
    for (key, value) in &attributes {
        validate_attribute(key, value)?;
    }
    if let Some(thing_type) = &thing_type {
        validate_thing_name(thing_type)?;
    }
    let json = serde_json::to_string(&attributes)
        .map_err(|e| StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))?;
    conn.execute(
        "UPDATE things SET thing_type = ?2, attributes = ?3, version = version + 1 WHERE name = ?1",
        params![thing.name, thing_type, json],
    )?;
    Ok(())
}
