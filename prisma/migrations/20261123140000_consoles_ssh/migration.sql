-- AlterTable
ALTER TABLE "OidcPayload" ADD COLUMN "accountId" TEXT;

-- AlterTable
ALTER TABLE "GatewayClient" ADD COLUMN "allowedVos" TEXT;

-- CreateTable
CREATE TABLE "SshKey" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "identityId" TEXT NOT NULL,
    "label" TEXT NOT NULL,
    "algorithm" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "publicKey" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastUsedAt" DATETIME,
    CONSTRAINT "SshKey_identityId_fkey" FOREIGN KEY ("identityId") REFERENCES "Identity" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "SshKey_fingerprint_key" ON "SshKey"("fingerprint");

-- CreateIndex
CREATE INDEX "SshKey_identityId_idx" ON "SshKey"("identityId");

-- CreateIndex
CREATE INDEX "AuditEvent_clientId_at_idx" ON "AuditEvent"("clientId", "at");

-- CreateIndex
CREATE INDEX "AuditEvent_actor_at_idx" ON "AuditEvent"("actor", "at");

-- CreateIndex
CREATE INDEX "OidcPayload_accountId_model_idx" ON "OidcPayload"("accountId", "model");

