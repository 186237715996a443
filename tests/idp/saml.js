// A real SAML 2.0 identity provider built with npm samlify, for portalctl's Servicekonto tests.
//
// Environment: SP_METADATA (comma-separated paths of SP metadata files), IDP_KEY and IDP_CERT
// (PEM files of the IdP's signing key and certificate). Listens on 127.0.0.1 on a free port
// and prints "listening <port>" once ready.
//
// GET /metadata  the IdP metadata (entity ID http://127.0.0.1:<port>/metadata)
// GET /sso       HTTP-Redirect binding: verifies the AuthnRequest's signature against the SP
//                metadata (and its schema), then answers with an auto-submitting HTML form that
//                POSTs a signed Response for the test citizen "Erika Mustermann".
//                Test scenarios, as extra query parameters outside the signed part:
//                level=<value> trust level asserted (default STORK-QAA-Level-3),
//                audience=<uri> a wrong audience, expired=1 an assertion already expired,
//                encrypt=cbc|gcm the assertion encrypted (aes256-cbc or aes128-gcm, rsa-oaep-mgf1p).
import http from 'node:http';
import fs from 'node:fs';
import samlify from 'samlify';
import * as validator from '@authenio/samlify-node-xmllint';

samlify.setSchemaValidator(validator);
// Exit with the test process that started us (it holds our stdin open).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

const spFiles = (process.env.SP_METADATA || '').split(',').filter(Boolean);
const privateKey = fs.readFileSync(process.env.IDP_KEY, 'utf8');
const signingCert = fs.readFileSync(process.env.IDP_CERT, 'utf8');
const sps = spFiles.map((f) => samlify.ServiceProvider({ metadata: fs.readFileSync(f, 'utf8') }));

const RESPONSE_TEMPLATE = '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{ID}" Version="2.0" IssueInstant="{IssueInstant}" Destination="{Destination}" InResponseTo="{InResponseTo}">'
  + '<saml:Issuer>{Issuer}</saml:Issuer><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
  + '<saml:Assertion xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{AssertionID}" Version="2.0" IssueInstant="{IssueInstant}">'
  + '<saml:Issuer>{Issuer}</saml:Issuer>'
  + '<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">{NameID}</saml:NameID>'
  + '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer"><saml:SubjectConfirmationData NotOnOrAfter="{NotOnOrAfter}" Recipient="{Recipient}" InResponseTo="{InResponseTo}"/></saml:SubjectConfirmation></saml:Subject>'
  + '<saml:Conditions NotBefore="{NotBefore}" NotOnOrAfter="{NotOnOrAfter}"><saml:AudienceRestriction><saml:Audience>{Audience}</saml:Audience></saml:AudienceRestriction></saml:Conditions>'
  + '<saml:AuthnStatement AuthnInstant="{IssueInstant}" SessionIndex="{AssertionID}"><saml:AuthnContext><saml:AuthnContextClassRef>{Level}</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>'
  + '<saml:AttributeStatement>'
  + '<saml:Attribute Name="urn:oid:2.5.4.42" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" FriendlyName="givenName"><saml:AttributeValue xsi:type="xs:string">{GivenName}</saml:AttributeValue></saml:Attribute>'
  + '<saml:Attribute Name="urn:oid:2.5.4.4" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" FriendlyName="surname"><saml:AttributeValue xsi:type="xs:string">{Surname}</saml:AttributeValue></saml:Attribute>'
  + '<saml:Attribute Name="urn:oid:1.2.40.0.10.2.1.1.261.94" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri" FriendlyName="trustLevel"><saml:AttributeValue xsi:type="xs:string">{Level}</saml:AttributeValue></saml:Attribute>'
  + '</saml:AttributeStatement></saml:Assertion></samlp:Response>';

const escapeHtml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/>/g, '&gt;');

const server = http.createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const base = `http://127.0.0.1:${port}`;
  const idpSettings = {
    entityID: `${base}/metadata`,
    privateKey,
    signingCert,
    wantAuthnRequestsSigned: true,
    isAssertionEncrypted: false,
    singleSignOnService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: `${base}/sso` }],
    singleLogoutService: [{ Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: `${base}/slo` }],
    loginResponseTemplate: { context: RESPONSE_TEMPLATE, attributes: [] },
  };
  const idp = samlify.IdentityProvider(idpSettings);
  // The same IdP, encrypting the (signed) assertion for the SP's encryption certificate.
  const encrypting = {
    cbc: samlify.IdentityProvider({ ...idpSettings, isAssertionEncrypted: true }),
    gcm: samlify.IdentityProvider({
      ...idpSettings,
      isAssertionEncrypted: true,
      dataEncryptionAlgorithm: 'http://www.w3.org/2009/xmlenc11#aes128-gcm',
    }),
  };

  const sso = async (req, res) => {
    const url = new URL(req.url, base);
    const rawQuery = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
    // The signed octet string: SAMLRequest, RelayState, SigAlg exactly as received (bindings §3.4.4.1).
    const parts = rawQuery.split('&');
    const pick = (name) => parts.find((p) => p.startsWith(`${name}=`));
    const octetString = ['SAMLRequest', 'RelayState', 'SigAlg'].map(pick).filter(Boolean).join('&');
    const query = Object.fromEntries(['SAMLRequest', 'RelayState', 'SigAlg', 'Signature']
      .filter((k) => url.searchParams.has(k)).map((k) => [k, url.searchParams.get(k)]));
    let sp = null;
    let parsed = null;
    const errors = [];
    for (const candidate of sps) {
      try {
        parsed = await idp.parseLoginRequest(candidate, 'redirect', { query, octetString });
        if (parsed.extract.issuer === candidate.entityMeta.getEntityID()) { sp = candidate; break; }
        errors.push(`issuer ${parsed.extract.issuer} is not ${candidate.entityMeta.getEntityID()}`);
      } catch (err) {
        errors.push(String(err && err.message ? err.message : err));
      }
    }
    if (!sp) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`AuthnRequest rejected: ${errors.join('; ')}`);
      return;
    }
    const level = url.searchParams.get('level') || 'STORK-QAA-Level-3';
    const audience = url.searchParams.get('audience') || sp.entityMeta.getEntityID();
    const expired = url.searchParams.get('expired') === '1';
    const now = new Date();
    const shift = (minutes) => new Date(now.getTime() + minutes * 60000).toISOString();
    const acs = sp.entityMeta.getAssertionConsumerService('post');
    const requestAcs = parsed.extract.request.assertionConsumerServiceUrl || acs;
    if (requestAcs !== acs) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`AssertionConsumerServiceURL ${requestAcs} is not in the SP metadata (${acs})`);
      return;
    }
    const id = `_${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`;
    const values = {
      ID: id,
      AssertionID: `_a${Math.random().toString(16).slice(2)}${Date.now().toString(16)}`,
      IssueInstant: now.toISOString(),
      Destination: acs,
      InResponseTo: parsed.extract.request.id,
      Issuer: idp.entityMeta.getEntityID(),
      NameID: 'bundid-test-erika-mustermann',
      Recipient: acs,
      Audience: audience,
      NotBefore: expired ? shift(-20) : shift(-1),
      NotOnOrAfter: expired ? shift(-10) : shift(5),
      Level: level,
      GivenName: 'Erika',
      Surname: 'Mustermann',
    };
    const responder = encrypting[url.searchParams.get('encrypt')] || idp;
    const response = await responder.createLoginResponse(sp, parsed, 'post', {}, {
      relayState: query.RelayState,
      customTagReplacement: (template) => ({ id, context: samlify.SamlLib.replaceTagsByValue(template, values) }),
    });
    const relay = response.relayState ? `<input type="hidden" name="RelayState" value="${escapeHtml(response.relayState)}">` : '';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!DOCTYPE html><html><body onload="document.forms[0].submit()"><form method="post" action="${escapeHtml(response.entityEndpoint)}">`
      + `<input type="hidden" name="SAMLResponse" value="${escapeHtml(response.context)}">${relay}<noscript><button>Weiter</button></noscript></form></body></html>`);
  };

  server.on('request', (req, res) => {
    if (req.url === '/metadata') {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' });
      res.end(idp.getMetadata());
    } else if (req.url.startsWith('/sso?')) {
      sso(req, res).catch((err) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(err && err.stack ? err.stack : err));
      });
    } else {
      res.writeHead(404);
      res.end('not found');
    }
  });
  // The first schema validation compiles the xmllint WebAssembly (seconds): do it before announcing readiness.
  validator.validate('<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_warmup" Version="2.0" IssueInstant="2026-01-01T00:00:00Z"><samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:LogoutResponse>')
    .catch(() => {})
    .finally(() => console.log(`listening ${port}`));
});
