-- AlterTable
ALTER TABLE "OidcPayload" ADD COLUMN "clientId" TEXT;

-- CreateIndex
CREATE INDEX "OidcPayload_clientId_idx" ON "OidcPayload"("clientId");

-- Backfill: the client of every stored grant, token and code, from oidc-provider's JSON payload.
-- Rows that are not JSON (the sealed signing key) are skipped.
UPDATE "OidcPayload" SET "clientId" = CASE WHEN json_valid("payload") THEN json_extract("payload", '$.clientId') END
WHERE "payload" LIKE '{%"clientId"%';
