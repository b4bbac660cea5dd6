-- CreateIndex
CREATE INDEX "Certificate_createdAt_id_idx" ON "Certificate"("createdAt", "id");

-- CreateIndex
CREATE INDEX "Certificate_clientId_createdAt_idx" ON "Certificate"("clientId", "createdAt");

-- CreateIndex
CREATE INDEX "Certificate_serialDec_idx" ON "Certificate"("serialDec");

-- CreateIndex
CREATE INDEX "Certificate_serialHex_idx" ON "Certificate"("serialHex");

