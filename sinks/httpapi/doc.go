// Package httpapi owns Spine's HTTP/JSON lookup API: the endpoints that
// personalization services call to read unified profiles, and the endpoints
// through which a customer's rights are exercised (access, erasure, consent)
// and an administrator curates the identity graph (link, unlink, release a
// quarantined value). It also serves /healthz, /readyz and /metrics.
//
// The package knows nothing about Badger or Kafka. It talks to the engine
// through the small Profiles and Normalizer interfaces defined here, and
// discovers optional capabilities (Commander, Grapher, Exporter, QuarantineLister,
// Accounts) by type assertion on the Profiles value, so the engine can grow
// them one at a time; an endpoint whose capability is missing answers 501.
//
// # Security model
//
// Every /v1 endpoint needs "Authorization: Bearer <secret>". Each configured
// Token has a name (used in logs, never the secret) and a set of scopes:
// read, write and admin. Scopes are independent, so a token meant for every
// endpoint lists all three (DESIGN §9: "s3cret:read+write+admin"). Secrets are
// compared in constant time against every configured token. Each token has
// its own token bucket (Config.RateLimit); the buckets live in a slice fixed
// at New, so the limiter's memory is bounded by the number of tokens.
//
// # Privacy
//
// Responses that carry profiles are marked Cache-Control: no-store. Error
// messages and logs never contain identifier values: identifiers are logged
// through canon.Identifier.LogValue (type plus a short keyed hash). Calls that touch
// a person's rights or the graph (export, erase, consent, link, unlink,
// release) and every authentication failure are written to the audit log, a
// child of the injected logger with the attribute audit=true.
package httpapi
