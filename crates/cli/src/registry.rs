//! Reading the emulator's registry through its control plane: every page of
//! AWS's List operations, and certificate ARNs.
//!
//! AWS's List operations return a page at a time; the CLI prints whole
//! listings, so each reader here asks for the largest pages and follows the
//! next token to the end.

use iotcore_emulator::control::{
    CertificateSummary, Control, ControlError, ErrorCode, JobExecutionSummaryForJob,
    JobExecutionSummaryForThing, JobSummary, ListAttachedPoliciesRequest, ListCertificatesRequest,
    ListJobExecutionsForJobRequest, ListJobExecutionsForThingRequest, ListJobsRequest,
    ListPrincipalThingsRequest, ListThingPrincipalsRequest, ListThingsRequest, ThingAttribute,
};

/// The largest page AWS's List operations return.
pub const MAX_PAGE: i64 = 250;

/// Every item of a paginated listing: calls `page` with the token of each page
/// (`None` for the first) until a page comes without a next token.
pub fn all_pages<T>(
    mut page: impl FnMut(Option<String>) -> Result<(Vec<T>, Option<String>), ControlError>,
) -> Result<Vec<T>, ControlError> {
    let mut items = Vec::new();
    let mut token = None;
    loop {
        let (mut more, next) = page(token)?;
        items.append(&mut more);
        match next {
            Some(next) => token = Some(next),
            None => return Ok(items),
        }
    }
}

/// Every thing, by name (ListThings).
pub fn things(control: &Control) -> Result<Vec<ThingAttribute>, ControlError> {
    all_pages(|next_token| {
        let page = control.list_things(ListThingsRequest {
            next_token,
            max_results: Some(MAX_PAGE),
            ..ListThingsRequest::default()
        })?;
        Ok((page.things, page.next_token))
    })
}

/// Every job (ListJobs).
pub fn jobs(control: &Control) -> Result<Vec<JobSummary>, ControlError> {
    all_pages(|next_token| {
        let page = control.list_jobs(ListJobsRequest {
            next_token,
            max_results: Some(MAX_PAGE),
            ..ListJobsRequest::default()
        })?;
        Ok((page.jobs, page.next_token))
    })
}

/// Every execution of job `job_id` (ListJobExecutionsForJob).
pub fn job_executions(
    control: &Control,
    job_id: &str,
) -> Result<Vec<JobExecutionSummaryForJob>, ControlError> {
    all_pages(|next_token| {
        let page = control.list_job_executions_for_job(ListJobExecutionsForJobRequest {
            job_id: job_id.to_owned(),
            next_token,
            max_results: Some(MAX_PAGE),
            ..ListJobExecutionsForJobRequest::default()
        })?;
        Ok((page.execution_summaries, page.next_token))
    })
}

/// Every job execution on thing `thing` (ListJobExecutionsForThing).
pub fn thing_job_executions(
    control: &Control,
    thing: &str,
) -> Result<Vec<JobExecutionSummaryForThing>, ControlError> {
    all_pages(|next_token| {
        let page = control.list_job_executions_for_thing(ListJobExecutionsForThingRequest {
            thing_name: thing.to_owned(),
            next_token,
            max_results: Some(MAX_PAGE),
            ..ListJobExecutionsForThingRequest::default()
        })?;
        Ok((page.execution_summaries, page.next_token))
    })
}

/// Every certificate, by id (ListCertificates).
pub fn certificates(control: &Control) -> Result<Vec<CertificateSummary>, ControlError> {
    all_pages(|marker| {
        let page = control.list_certificates(ListCertificatesRequest {
            marker,
            page_size: Some(MAX_PAGE),
            ..ListCertificatesRequest::default()
        })?;
        Ok((page.certificates, page.next_marker))
    })
}

/// The ids of the certificates attached to thing `thing` (ListThingPrincipals).
pub fn thing_certificates(control: &Control, thing: &str) -> Result<Vec<String>, ControlError> {
    let arns = all_pages(|next_token| {
        let page = control.list_thing_principals(ListThingPrincipalsRequest {
            thing_name: thing.to_owned(),
            next_token,
            max_results: Some(MAX_PAGE),
        })?;
        Ok((page.principals, page.next_token))
    })?;
    Ok(arns
        .iter()
        .map(|arn| certificate_id(arn).to_owned())
        .collect())
}

/// The names of the things certificate `id` is attached to (ListPrincipalThings).
pub fn certificate_things(control: &Control, id: &str) -> Result<Vec<String>, ControlError> {
    let principal = certificate_arn(control, id);
    all_pages(|next_token| {
        let page = control.list_principal_things(ListPrincipalThingsRequest {
            principal: principal.clone(),
            next_token,
            max_results: Some(MAX_PAGE),
        })?;
        Ok((page.things, page.next_token))
    })
}

/// The names of the policies attached to certificate `id` (ListAttachedPolicies).
pub fn certificate_policies(control: &Control, id: &str) -> Result<Vec<String>, ControlError> {
    let target = certificate_arn(control, id);
    let policies = all_pages(|marker| {
        let page = control.list_attached_policies(ListAttachedPoliciesRequest {
            target: target.clone(),
            marker,
            page_size: Some(MAX_PAGE),
            ..ListAttachedPoliciesRequest::default()
        })?;
        Ok((page.policies, page.next_marker))
    })?;
    Ok(policies.into_iter().map(|p| p.policy_name).collect())
}

/// The ARN of certificate `id`: `arn:aws:iot:REGION:ACCOUNT:cert/ID`.
pub fn certificate_arn(control: &Control, id: &str) -> String {
    format!("{}cert/{id}", control.arn_scope().prefix())
}

/// The id in a certificate ARN (`…:cert/ID`); anything else as it is.
pub fn certificate_id(arn: &str) -> &str {
    arn.rsplit_once(":cert/").map_or(arn, |(_, id)| id)
}

/// `Ok(None)` for a ResourceNotFoundException, the result otherwise: whether
/// a Describe/Get operation found its resource.
pub fn found<T>(result: Result<T, ControlError>) -> Result<Option<T>, ControlError> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if e.code() == ErrorCode::ResourceNotFound => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use iotcore_emulator::control::{CreateThingRequest, DescribeThingRequest};

    use super::*;

    #[test]
    fn all_pages_follows_the_tokens_to_the_end() {
        let pages = [vec![1, 2], vec![3], vec![]];
        let mut asked = Vec::new();
        let items = all_pages(|token| {
            asked.push(token.clone());
            let index: usize = token.map_or(0, |t| t.parse().unwrap());
            let next = (index + 1 < pages.len()).then(|| (index + 1).to_string());
            Ok((pages[index].clone(), next))
        })
        .unwrap();
        assert_eq!(items, [1, 2, 3]);
        assert_eq!(asked, [None, Some("1".into()), Some("2".into())]);
    }

    #[test]
    fn certificate_ids_come_out_of_their_arns() {
        let id = "ab".repeat(32);
        assert_eq!(
            certificate_id(&format!("arn:aws:iot:us-east-1:123456789012:cert/{id}")),
            id
        );
        assert_eq!(certificate_id(&id), id);
    }

    #[test]
    fn listings_take_every_page() {
        let dir = tempfile::tempdir().unwrap();
        let control = Control::open(dir.path(), Default::default()).unwrap();
        let names: Vec<String> = (0..260).map(|i| format!("t{i:03}")).collect();
        for name in &names {
            control
                .create_thing(CreateThingRequest::named(name))
                .unwrap();
        }
        let listed: Vec<String> = things(&control)
            .unwrap()
            .into_iter()
            .map(|t| t.thing_name)
            .collect();
        assert_eq!(listed, names);
        let missing = control.describe_thing(DescribeThingRequest {
            thing_name: "missing".into(),
        });
        assert_eq!(found(missing).unwrap(), None);
    }
}
