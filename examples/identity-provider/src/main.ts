import { intEnv } from '@idctx/example-shared/env'
import { startIdentityProvider } from './identity-provider.js'

const idp = await startIdentityProvider({
  port: intEnv('PORT', 4000),
  ...(process.env.PUBLIC_URL ? { issuer: process.env.PUBLIC_URL } : {}),
})
console.log(`identity-provider listening on ${idp.url}`)
