/** Namespace of Auth0 custom claims, shared with the development IdP. */
export const AUTH0_NAMESPACE = 'https://idctx.example/'
