import { intEnv, readEnv } from '@idctx/example-shared'
import { startGateway } from './gateway.js'

const env = readEnv()
const gateway = await startGateway({
  port: intEnv('PORT', 4001),
  idpUrl: process.env.IDP_URL ?? 'http://127.0.0.1:4000',
  ordersUrl: process.env.ORDERS_URL ?? 'http://127.0.0.1:4002',
  audience: env.audience,
})
console.log(`gateway listening on ${gateway.url}`)
