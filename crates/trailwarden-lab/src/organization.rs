//! An AWS organization over the lab's accounts: the operator's account is the management
//! account, member accounts are invited into organizational units (moto lacks invitations;
//! `aws_fidelity.py` emulates them), and accounts can be created, closed, removed, and given
//! an opt-in region of their own.

use crate::{HOME_REGION, Lab, LabError, ROLE_NAME, operator_options, step_failed};
use std::collections::BTreeMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use trailwarden_aws::sdk::organizations::types::{HandshakeParty, HandshakePartyType};
use trailwarden_aws::{AccountConfig, ClientFactory};

/// The organization the lab formed.
#[derive(Debug, Clone)]
pub struct LabOrganization {
    pub id: String,
    pub root: String,
    /// Unit path (`workloads/prod`) → its id.
    pub units: BTreeMap<String, String>,
}

impl LabOrganization {
    /// The id of a unit by its path; panics on a path the lab did not create (a test bug).
    pub fn unit(&self, path: &str) -> &str {
        self.units
            .get(path)
            .unwrap_or_else(|| panic!("the lab created no unit {path}"))
    }
}

/// The management account's clients, straight to moto (the proxy counts only trailwarden).
async fn management(lab: &Lab) -> AccountConfig {
    ClientFactory::new(&operator_options(&lab.description.moto_endpoint))
        .await
        .caller()
}

impl Lab {
    /// Forms the organization: the unit paths in `units` (parents first, e.g. `workloads`,
    /// `workloads/prod`), then each `(account, unit path)` invited and accepted there (`""`
    /// is the root).
    pub async fn form_organization(
        &self,
        units: &[&str],
        members: &[(&str, &str)],
    ) -> Result<LabOrganization, LabError> {
        let org = management(self).await.organizations(HOME_REGION);
        let who = "management";
        let created = call!(who, "CreateOrganization", org.create_organization().send());
        let id = created
            .organization()
            .and_then(|o| o.id())
            .unwrap_or_default()
            .to_owned();
        let roots = call!(who, "ListRoots", org.list_roots().send());
        let root = roots
            .roots()
            .first()
            .and_then(|r| r.id())
            .ok_or_else(|| step_failed(who, "ListRoots", "no root"))?
            .to_owned();
        let mut made = LabOrganization {
            id,
            root: root.clone(),
            units: BTreeMap::new(),
        };
        for path in units {
            let (parent, name) = match path.rsplit_once('/') {
                Some((parent, name)) => (made.unit(parent).to_owned(), name),
                None => (root.clone(), *path),
            };
            let unit = call!(
                who,
                "CreateOrganizationalUnit",
                org.create_organizational_unit()
                    .parent_id(parent)
                    .name(name)
                    .send()
            );
            let unit_id = unit
                .organizational_unit()
                .and_then(|u| u.id())
                .unwrap_or_default()
                .to_owned();
            made.units.insert((*path).to_owned(), unit_id);
        }
        for (account, path) in members {
            self.invite(&made, account, path).await?;
        }
        // The security account, where `watch` runs, administers GuardDuty for the
        // organization: a delegated administrator may list the organization.
        let security = self.description.security.id.clone();
        self.invite(&made, &security, "").await?;
        call!(
            &security,
            "RegisterDelegatedAdministrator",
            org.register_delegated_administrator()
                .account_id(&security)
                .service_principal("guardduty.amazonaws.com")
                .send()
        );
        Ok(made)
    }

    /// Invites `account` (it accepts, as its own admin) and moves it into the unit at `path`.
    pub async fn invite(
        &self,
        org: &LabOrganization,
        account: &str,
        path: &str,
    ) -> Result<(), LabError> {
        let management = management(self).await.organizations(HOME_REGION);
        let target = HandshakeParty::builder()
            .id(account)
            .r#type(HandshakePartyType::Account)
            .build()
            .map_err(|e| step_failed(account, "InviteAccountToOrganization", e))?;
        let invited = call!(
            account,
            "InviteAccountToOrganization",
            management
                .invite_account_to_organization()
                .target(target)
                .send()
        );
        let handshake = invited
            .handshake()
            .and_then(|h| h.id())
            .unwrap_or_default()
            .to_owned();
        let member = self.operator_in(account).await;
        call!(
            account,
            "AcceptHandshake",
            member
                .organizations(HOME_REGION)
                .accept_handshake()
                .handshake_id(handshake)
                .send()
        );
        self.move_account(org, account, path).await
    }

    /// Creates a new member account in the unit at `path`; returns its id.
    pub async fn create_account(
        &self,
        org: &LabOrganization,
        name: &str,
        path: &str,
    ) -> Result<String, LabError> {
        let management = management(self).await.organizations(HOME_REGION);
        let created = call!(
            name,
            "CreateAccount",
            management
                .create_account()
                .account_name(name)
                .email(format!("{name}@example.com"))
                .send()
        );
        let id = created
            .create_account_status()
            .and_then(|s| s.account_id())
            .ok_or_else(|| step_failed(name, "CreateAccount", "no account id"))?
            .to_owned();
        self.move_account(org, &id, path).await?;
        Ok(id)
    }

    async fn move_account(
        &self,
        org: &LabOrganization,
        account: &str,
        path: &str,
    ) -> Result<(), LabError> {
        if path.is_empty() {
            return Ok(());
        }
        let management = management(self).await.organizations(HOME_REGION);
        call!(
            account,
            "MoveAccount",
            management
                .move_account()
                .account_id(account)
                .source_parent_id(&org.root)
                .destination_parent_id(org.unit(path))
                .send()
        );
        Ok(())
    }

    /// Closes a member account (it becomes SUSPENDED).
    pub async fn close_account(&self, account: &str) -> Result<(), LabError> {
        let management = management(self).await.organizations(HOME_REGION);
        call!(
            account,
            "CloseAccount",
            management.close_account().account_id(account).send()
        );
        Ok(())
    }

    /// Removes a member account from the organization (as LeaveOrganization does, catalog G1).
    pub async fn remove_account(&self, account: &str) -> Result<(), LabError> {
        let management = management(self).await.organizations(HOME_REGION);
        call!(
            account,
            "RemoveAccountFromOrganization",
            management
                .remove_account_from_organization()
                .account_id(account)
                .send()
        );
        Ok(())
    }

    /// The member's own attacker leaves the organization (catalog G1), through the proxy: the
    /// recorder sends the LeaveOrganization event as CloudTrail would.
    pub async fn leave_organization(&self, account: &str) -> Result<(), LabError> {
        let attacker = self.attacker(account).await;
        call!(
            account,
            "LeaveOrganization",
            attacker
                .organizations(HOME_REGION)
                .leave_organization()
                .send()
        );
        Ok(())
    }

    /// Turns GuardDuty on in `region` of `account` (as the organization's auto-enable would).
    pub async fn enable_guardduty(&self, account: &str, region: &str) -> Result<(), LabError> {
        let clients = self.operator_in(account).await;
        call!(
            account,
            "CreateDetector",
            clients
                .guardduty(region)
                .create_detector()
                .enable(true)
                .send()
        );
        Ok(())
    }

    /// Opts `account` into `region` (account:EnableRegion, emulated by `aws_fidelity.py`):
    /// from then on that account's DescribeRegions reports it `opted-in`.
    pub async fn enable_region(&self, account: &str, region: &str) -> Result<(), LabError> {
        let body = serde_json::json!({"AccountId": account, "RegionName": region}).to_string();
        let key = crate::operator_credentials();
        let answer = raw_post(
            &self.description.moto_endpoint,
            "/enableRegion",
            "application/json",
            key.access_key_id(),
            "account",
            &body,
        )
        .await
        .map_err(|e| step_failed(account, "EnableRegion", e))?;
        if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
            Ok(())
        } else {
            Err(step_failed(account, "EnableRegion", answer))
        }
    }

    /// IAM's GetRole answer (XML) for role `name` of `account`, or `None` when there is no
    /// such role. (The lab has no IAM client; one query call is enough.)
    pub async fn iam_role(&self, account: &str, name: &str) -> Result<Option<String>, LabError> {
        let sts = ClientFactory::new(&operator_options(&self.description.moto_endpoint))
            .await
            .caller()
            .sts(HOME_REGION);
        // moto tells accounts apart by the access key: a session in the account.
        let session = call!(
            account,
            "AssumeRole",
            sts.assume_role()
                .role_arn(format!("arn:aws:iam::{account}:role/{ROLE_NAME}"))
                .role_session_name("lab-iam-check")
                .send()
        );
        let key = session
            .credentials()
            .map(|c| c.access_key_id().to_owned())
            .unwrap_or_default();
        let answer = raw_post(
            &self.description.moto_endpoint,
            "/",
            "application/x-www-form-urlencoded",
            &key,
            "iam",
            &format!("Action=GetRole&RoleName={name}&Version=2010-05-08"),
        )
        .await
        .map_err(|e| step_failed(account, "GetRole", e))?;
        if answer.starts_with("HTTP/1.1 200") || answer.starts_with("HTTP/1.0 200") {
            Ok(Some(answer))
        } else if answer.contains("NoSuchEntity") {
            Ok(None)
        } else {
            Err(step_failed(account, "GetRole", answer))
        }
    }
}

/// One HTTP/1.1 POST to moto, signed in name only (moto reads the key and the service from
/// the credential scope and does not check signatures). Returns the whole answer.
async fn raw_post(
    endpoint: &str,
    path: &str,
    content_type: &str,
    access_key: &str,
    service: &str,
    body: &str,
) -> std::io::Result<String> {
    let address = endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\nAuthorization: AWS4-HMAC-SHA256 Credential={access_key}/20261208/{HOME_REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&address).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await?;
    Ok(answer)
}
