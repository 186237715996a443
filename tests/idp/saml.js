// A real SAML 2.0 identity provider built with npm samlify, for portalctl's Servicekonto tests.
// It behaves like BundID (the federal citizen account) for the SPs it knows.
//
// Environment: SP_METADATA (comma-separated paths of SP metadata files), IDP_KEY and IDP_CERT
// (PEM files of the IdP's signing key and certificate). Listens on 127.0.0.1 on a free port
// and prints "listening <port>" once ready.
//
// GET /metadata  the IdP metadata (entity ID http://127.0.0.1:<port>/metadata); single sign-on
//                at BundID's (Shibboleth) paths /idp/profile/SAML2/Redirect/SSO and …/POST/SSO.
// GET /idp/profile/SAML2/Redirect/SSO
//                HTTP-Redirect binding: verifies the AuthnRequest's signature over the query
//                string against the SP metadata (and the request against the SAML schema).
// POST /idp/profile/SAML2/POST/SSO
//                HTTP-POST binding (form fields SAMLRequest, RelayState): the AuthnRequest must
//                carry an enveloped XML signature that verifies with the SP metadata's
//                certificate (an unsigned or changed request is refused), and the schema.
//                Either way the request is then checked the way BundID does: it must carry
//                <samlp:Extensions> with akdb:AuthenticationRequest (Version 2) listing the
//                RequestedAttributes by urn:oid name and the DisplayInformation with an
//                OrganizationDisplayName, and a RequestedAuthnContext Comparison="minimum" with a
//                STORK-QAA-Level-1…4. A request without them is refused (400). Then it answers
//                with an auto-submitting HTML form that POSTs a signed Response for the test
//                citizen "Erika Mustermann": every requested attribute by OID, and the trust
//                level as attribute urn:oid:1.2.40.0.10.2.1.1.261.94 and AuthnContextClassRef.
//                Test scenarios, as query parameters of the SSO URL outside the signed part:
//                level=<value> trust level asserted (default STORK-QAA-Level-3),
//                audience=<uri> a wrong audience, expired=1 an assertion already expired,
//                encrypt=cbc|gcm the assertion encrypted (aes256-cbc or aes128-gcm, rsa-oaep-mgf1p).
// GET /requests  what the IdP received, newest last (JSON): per AuthnRequest the binding
//                (redirect|post), its ID, issuer, the requested attributes, display information,
//                comparison and level, or why it was refused.
import http from 'node:http';
import fs from 'node:fs';
import samlify from 'samlify';
import * as validator from '@authenio/samlify-node-xmllint';
import { DOMParser } from '@xmldom/xmldom';

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
  + '<saml:AttributeStatement><!--ATTRIBUTES-->'
  + '</saml:AttributeStatement></saml:Assertion></samlp:Response>';

const escapeXml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const escapeHtml = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;').replace(/>/g, '&gt;');

const PROTOCOL_NS = 'urn:oasis:names:tc:SAML:2.0:protocol';
const ASSERTION_NS = 'urn:oasis:names:tc:SAML:2.0:assertion';
const AKDB_NS = 'https://www.akdb.de/request/2018/09';
const CLASSIC_UI_NS = 'https://www.akdb.de/request/2018/09/classic-ui/v1';
const TRUST_LEVEL_OID = 'urn:oid:1.2.40.0.10.2.1.1.261.94';
// The test citizen, by BundID's attribute OIDs.
const CITIZEN = {
  'urn:oid:2.5.4.42': 'Erika',
  'urn:oid:2.5.4.4': 'Mustermann',
  'urn:oid:1.2.40.0.10.2.1.1.55': '1964-08-12',
  'urn:oid:2.5.4.16': 'Heidestraße 17',
  'urn:oid:2.5.4.17': '51147',
  'urn:oid:2.5.4.7': 'Köln',
  'urn:oid:0.9.2342.19200300.100.1.3': 'erika.mustermann@example.org',
  'urn:oid:1.3.6.1.4.1.25484.494450.3': 'bpk2-test-erika-mustermann',
};

// What BundID requires of an AuthnRequest; throws with the reason when something is missing.
const bundidRequest = (xml) => {
  const doc = new DOMParser().parseFromString(xml, 'text/xml');
  const root = doc.documentElement;
  const children = (el, ns, name) => Array.from(el.childNodes).filter((n) => n.namespaceURI === ns && n.localName === name);
  const one = (el, ns, name, what) => {
    const found = children(el, ns, name);
    if (found.length !== 1) throw new Error(`${what}: expected exactly one ${name}, found ${found.length}`);
    return found[0];
  };
  const ext = one(root, PROTOCOL_NS, 'Extensions', 'AuthnRequest');
  const authReq = one(ext, AKDB_NS, 'AuthenticationRequest', 'samlp:Extensions');
  if (authReq.getAttribute('Version') !== '2') throw new Error('akdb:AuthenticationRequest Version is not 2');
  const requested = one(authReq, AKDB_NS, 'RequestedAttributes', 'akdb:AuthenticationRequest');
  const attributes = children(requested, AKDB_NS, 'RequestedAttribute').map((a) => ({
    name: a.getAttribute('Name'),
    required: a.getAttribute('RequiredAttribute') === 'true',
  }));
  if (attributes.length === 0) throw new Error('akdb:RequestedAttributes is empty');
  for (const a of attributes) {
    if (!/^urn:oid:[0-9]+(\.[0-9]+)*$/.test(a.name)) throw new Error(`RequestedAttribute ${a.name} is not named by urn:oid`);
  }
  const display = one(authReq, AKDB_NS, 'DisplayInformation', 'akdb:AuthenticationRequest');
  const version = one(display, CLASSIC_UI_NS, 'Version', 'akdb:DisplayInformation');
  const text = (name) => children(version, CLASSIC_UI_NS, name).map((n) => n.textContent)[0];
  const organizationDisplayName = text('OrganizationDisplayName');
  if (!organizationDisplayName) throw new Error('DisplayInformation without OrganizationDisplayName');
  const context = one(root, PROTOCOL_NS, 'RequestedAuthnContext', 'AuthnRequest');
  const comparison = context.getAttribute('Comparison');
  if (comparison !== 'minimum') throw new Error(`RequestedAuthnContext Comparison is ${comparison}, not minimum`);
  const level = one(context, ASSERTION_NS, 'AuthnContextClassRef', 'RequestedAuthnContext').textContent;
  if (!/^STORK-QAA-Level-[1-4]$/.test(level)) throw new Error(`requested level ${level} is not a STORK-QAA-Level`);
  return { attributes, organizationDisplayName, onlineServiceId: text('OnlineServiceId') || null, comparison, level };
};

const attributeXml = (name, value) => `<saml:Attribute Name="${name}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">`
  + `<saml:AttributeValue xsi:type="xs:string">${escapeXml(value)}</saml:AttributeValue></saml:Attribute>`;

const received = [];

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
    singleSignOnService: [
      { Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect', Location: `${base}/idp/profile/SAML2/Redirect/SSO` },
      { Binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', Location: `${base}/idp/profile/SAML2/POST/SSO` },
    ],
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

  // Which known SP sent the AuthnRequest: samlify verifies its signature against each SP's
  // metadata (and the SAML schema) for the binding it came by.
  const identify = async (binding, req) => {
    const errors = [];
    for (const candidate of sps) {
      try {
        const parsed = await idp.parseLoginRequest(candidate, binding, req);
        if (parsed.extract.issuer === candidate.entityMeta.getEntityID()) return { sp: candidate, parsed };
        errors.push(`issuer ${parsed.extract.issuer} is not ${candidate.entityMeta.getEntityID()}`);
      } catch (err) {
        errors.push(String(err && err.message ? err.message : err));
      }
    }
    return { errors };
  };

  // HTTP-Redirect binding: the signature over the query string.
  const ssoRedirect = async (req, res) => {
    const url = new URL(req.url, base);
    const rawQuery = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
    // The signed octet string: SAMLRequest, RelayState, SigAlg exactly as received (bindings §3.4.4.1).
    const parts = rawQuery.split('&');
    const pick = (name) => parts.find((p) => p.startsWith(`${name}=`));
    const octetString = ['SAMLRequest', 'RelayState', 'SigAlg'].map(pick).filter(Boolean).join('&');
    const query = Object.fromEntries(['SAMLRequest', 'RelayState', 'SigAlg', 'Signature']
      .filter((k) => url.searchParams.has(k)).map((k) => [k, url.searchParams.get(k)]));
    await answer('redirect', await identify('redirect', { query, octetString }), query.RelayState, url, res);
  };

  // HTTP-POST binding (bindings §3.5): the form fields SAMLRequest (base64) and RelayState; the
  // request must carry an enveloped signature, verified against the SP metadata's certificate.
  const ssoPost = async (req, res) => {
    const url = new URL(req.url, base);
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const body = Object.fromEntries(['SAMLRequest', 'RelayState'].filter((k) => form.has(k)).map((k) => [k, form.get(k)]));
    if (!body.SAMLRequest) {
      received.push({ binding: 'post', refused: 'POST without SAMLRequest' });
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('AuthnRequest rejected: POST without SAMLRequest');
      return;
    }
    await answer('post', await identify('post', { body }), body.RelayState, url, res);
  };

  // Check a verified AuthnRequest against the BundID profile and answer with the test citizen.
  // Scenario parameters come from the query of the SSO URL, outside the signed part.
  const answer = async (binding, { sp, parsed, errors }, relayState, url, res) => {
    if (!sp) {
      received.push({ binding, refused: errors.join('; ') });
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`AuthnRequest rejected: ${errors.join('; ')}`);
      return;
    }
    let bundid;
    try {
      bundid = bundidRequest(parsed.samlContent);
    } catch (err) {
      received.push({ binding, id: parsed.extract.request.id, issuer: parsed.extract.issuer, refused: err.message });
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`AuthnRequest rejected (BundID profile): ${err.message}`);
      return;
    }
    received.push({ binding, id: parsed.extract.request.id, issuer: parsed.extract.issuer, ...bundid });
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
    };
    // Every requested attribute the citizen has, and the trust level (inserted after the
    // template's escaping replacement: this is markup).
    const attributes = bundid.attributes.filter((a) => CITIZEN[a.name]).map((a) => attributeXml(a.name, CITIZEN[a.name])).join('')
      + attributeXml(TRUST_LEVEL_OID, level);
    const responder = encrypting[url.searchParams.get('encrypt')] || idp;
    const response = await responder.createLoginResponse(sp, parsed, 'post', {}, {
      relayState,
      customTagReplacement: (template) => ({
        id,
        context: samlify.SamlLib.replaceTagsByValue(template, values).replace('<!--ATTRIBUTES-->', attributes),
      }),
    });
    const relay = response.relayState ? `<input type="hidden" name="RelayState" value="${escapeHtml(response.relayState)}">` : '';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!DOCTYPE html><html><body onload="document.forms[0].submit()"><form method="post" action="${escapeHtml(response.entityEndpoint)}">`
      + `<input type="hidden" name="SAMLResponse" value="${escapeHtml(response.context)}">${relay}<noscript><button>Weiter</button></noscript></form></body></html>`);
  };

  const failed = (res) => (err) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(err && err.stack ? err.stack : err));
  };

  server.on('request', (req, res) => {
    if (req.url === '/metadata') {
      res.writeHead(200, { 'content-type': 'application/samlmetadata+xml' });
      res.end(idp.getMetadata());
    } else if (req.url === '/requests') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(received));
    } else if (req.method === 'GET' && req.url.startsWith('/idp/profile/SAML2/Redirect/SSO?')) {
      ssoRedirect(req, res).catch(failed(res));
    } else if (req.method === 'POST' && /^\/idp\/profile\/SAML2\/POST\/SSO(\?|$)/.test(req.url)) {
      ssoPost(req, res).catch(failed(res));
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
