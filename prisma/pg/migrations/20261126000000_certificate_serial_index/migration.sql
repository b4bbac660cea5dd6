-- Issue 18: one index on the random serial instead of four. The unique key leads with the serial,
-- so it also serves a search by serial alone (a decimal serial is searched as its hex form, and a
-- subject through its person). The new key exists before the old one goes.

-- CreateIndex
CREATE UNIQUE INDEX "Certificate_serialHex_issuer_key" ON "Certificate"("serialHex", "issuer");

-- DropIndex
DROP INDEX "Certificate_issuer_serialHex_key";

-- DropIndex
DROP INDEX "Certificate_serialHex_idx";

-- DropIndex
DROP INDEX "Certificate_serialDec_idx";

-- DropIndex
DROP INDEX "Certificate_subject_idx";
