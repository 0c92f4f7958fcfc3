//! Thing principals: AttachThingPrincipal, DetachThingPrincipal,
//! ListThingPrincipals, ListPrincipalThings. A principal is a certificate,
//! named by its ARN.

use serde::{Deserialize, Serialize};

use super::page::paginate;
use super::thing_groups::ListThingNamesResponse;
use super::{Control, ControlError, lenient};

/// AttachThingPrincipal's and DetachThingPrincipal's request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThingPrincipalRequest {
    /// The thing name.
    pub thing_name: String,
    /// The principal: a certificate ARN (header `x-amzn-principal` over HTTP).
    pub principal: String,
    /// EXCLUSIVE_THING or NON_EXCLUSIVE_THING (the default).
    pub thing_principal_type: Option<String>,
}

/// ListThingPrincipals' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListThingPrincipalsRequest {
    /// The thing name.
    pub thing_name: String,
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
}

/// ListThingPrincipals' response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListThingPrincipalsResponse {
    /// The principals' ARNs.
    pub principals: Vec<String>,
    /// The token of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// ListPrincipalThings' request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPrincipalThingsRequest {
    /// The principal: a certificate ARN.
    pub principal: String,
    /// The token of the page to return.
    pub next_token: Option<String>,
    /// At most this many (1 to 250).
    #[serde(default, deserialize_with = "lenient::int")]
    pub max_results: Option<i64>,
}

impl Control {
    /// AttachThingPrincipal. With EXCLUSIVE_THING the certificate may be
    /// attached to no other thing.
    pub fn attach_thing_principal(
        &self,
        request: ThingPrincipalRequest,
    ) -> Result<(), ControlError> {
        let exclusive = match request.thing_principal_type.as_deref() {
            None | Some("NON_EXCLUSIVE_THING") => false,
            Some("EXCLUSIVE_THING") => true,
            Some(other) => {
                return Err(ControlError::invalid(format!(
                    "thingPrincipalType {other:?} is not EXCLUSIVE_THING or NON_EXCLUSIVE_THING"
                )));
            }
        };
        self.require_thing(&request.thing_name)?;
        let certificate = self.certificate_target(&request.principal)?;
        if exclusive {
            let others: Vec<String> = self
                .require_certificate(&certificate)?
                .things
                .into_iter()
                .filter(|t| t != &request.thing_name)
                .collect();
            if !others.is_empty() {
                return Err(ControlError::invalid(format!(
                    "the principal is attached to {} already: an EXCLUSIVE_THING principal \
                     belongs to one thing",
                    others.join(", ")
                )));
            }
        }
        self.store
            .attach_thing_principal(&request.thing_name, &certificate)?;
        self.changed();
        Ok(())
    }

    /// DetachThingPrincipal.
    pub fn detach_thing_principal(
        &self,
        request: ThingPrincipalRequest,
    ) -> Result<(), ControlError> {
        self.require_thing(&request.thing_name)?;
        let certificate = self.certificate_target(&request.principal)?;
        if self
            .store
            .detach_thing_principal(&request.thing_name, &certificate)?
        {
            self.changed();
        }
        Ok(())
    }

    /// ListThingPrincipals.
    pub fn list_thing_principals(
        &self,
        request: ListThingPrincipalsRequest,
    ) -> Result<ListThingPrincipalsResponse, ControlError> {
        self.require_thing(&request.thing_name)?;
        let page = paginate(
            self.store.thing_principals(&request.thing_name)?,
            |id| id.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            25,
            250,
        )?;
        Ok(ListThingPrincipalsResponse {
            principals: page.items.iter().map(|id| self.arn("cert", id)).collect(),
            next_token: page.next,
        })
    }

    /// ListPrincipalThings.
    pub fn list_principal_things(
        &self,
        request: ListPrincipalThingsRequest,
    ) -> Result<ListThingNamesResponse, ControlError> {
        let certificate = self.certificate_target(&request.principal)?;
        let page = paginate(
            self.require_certificate(&certificate)?.things,
            |t| t.as_str(),
            request.next_token.as_deref(),
            request.max_results,
            25,
            250,
        )?;
        Ok(ListThingNamesResponse {
            things: page.items,
            next_token: page.next,
        })
    }
}
