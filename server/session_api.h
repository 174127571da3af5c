/*
 * Sign-in over HTTP: who is asking (a bearer token or the ov_session cookie), sessions
 * (/api/v1/session) and account management (/api/v1/accounts). docs/roles.md states the session
 * and cookie rules; docs/openapi.yaml the shapes.
 *
 * A session token is 32 random bytes in base64url without padding (43 characters). The node keeps
 * only SHA-256 of the token's text, so a copy of the database signs nobody in. Sessions last 12
 * hours; signing out, a password change, a role change and disabling the account end them. Every
 * change is answered only after the writer made it durable.
 */
#ifndef OV_SESSION_API_H
#define OV_SESSION_API_H

#include "server/auth.h"
#include "server/http.h"
#include "server/node.h"

#define OV_SESSION_TOKEN_BYTES 32
#define OV_SESSION_TOKEN_CHARS 43
#define OV_SESSION_LIFETIME_MS (12 * 3600 * 1000LL)
#define OV_SESSION_COOKIE      "ov_session"

/* Who sent req: from "Authorization: Bearer <token>" or, failing that header, the cookie
 * ov_session=<token>. No token at all: *out is the anonymous principal and OV_OK. A malformed,
 * unknown or expired token, or one whose account is gone or disabled: OV_EAUTH (answer 401).
 * Storage failures: OV_ESTORE. Does not answer req. */
int ov_session_api_principal(ov_node *node, ov_http_request *req, ov_principal *out);
/* The same from the two headers' values (either may be NULL), e.g. those of a websocket upgrade,
 * or "Bearer <token>" as authorization for a token that came another way. */
int ov_session_api_principal_from(ov_node *node, const char *authorization, const char *cookie,
                                  ov_principal *out);

/* Answers req and returns 1 when its path is /api/v1/session or /api/v1/accounts[/…]; returns 0
 * (req untouched) for every other path. */
int ov_session_api_route(ov_node *node, ov_http_request *req);

#endif
