import { intEnv } from '@idctx/example-shared/env'
import { onShutdown } from '@idctx/example-shared/shutdown'
import { startIdentityProvider } from './identity-provider.js'

const env = process.env
const idp = await startIdentityProvider({
  port: intEnv('PORT', 4000),
  host: env.HOST ?? '127.0.0.1',
  // The issuer (`iss`) must be the URL the gateway knows the IdP by (IDP_URL), e.g. in Docker.
  ...(env.PUBLIC_URL ? { issuer: env.PUBLIC_URL } : {}),
})
console.log(`identity-provider listening (issuer ${idp.url})`)
onShutdown(() => idp.close())
