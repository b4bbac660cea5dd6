-- CreateSchema
CREATE SCHEMA IF NOT EXISTS "public";

-- CreateTable
CREATE TABLE "CaRecord" (
    "id" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "certPem" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "notAfter" TIMESTAMP(3) NOT NULL,
    "crlNumber" INTEGER NOT NULL DEFAULT 0,
    "crlIssuedAt" TIMESTAMP(3),
    "crlNextUpdate" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CaRecord_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Identity" (
    "id" TEXT NOT NULL,
    "identifierHash" TEXT NOT NULL,
    "issuer" TEXT NOT NULL,
    "sub" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "displayName" TEXT NOT NULL,
    "email" TEXT,
    "organisation" TEXT NOT NULL,
    "claims" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeenAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Identity_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Certificate" (
    "id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "serialHex" TEXT NOT NULL,
    "serialDec" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "issuer" TEXT NOT NULL,
    "identityId" TEXT NOT NULL,
    "parentId" TEXT,
    "notBefore" TIMESTAMP(3) NOT NULL,
    "notAfter" TIMESTAMP(3) NOT NULL,
    "pem" TEXT NOT NULL,
    "keyEnc" TEXT,
    "keySource" TEXT,
    "keyBits" INTEGER NOT NULL,
    "clientId" TEXT,
    "vo" TEXT,
    "fqans" TEXT,
    "status" TEXT NOT NULL DEFAULT 'valid',
    "revokedAt" TIMESTAMP(3),
    "revocationReason" INTEGER,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Certificate_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "AuditEvent" (
    "id" TEXT NOT NULL,
    "at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "action" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "outcome" TEXT NOT NULL DEFAULT 'success',
    "identityId" TEXT,
    "certificateId" TEXT,
    "clientId" TEXT,
    "ip" TEXT,
    "details" TEXT NOT NULL DEFAULT '{}',

    CONSTRAINT "AuditEvent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Identity_identifierHash_key" ON "Identity"("identifierHash");

-- CreateIndex
CREATE UNIQUE INDEX "Identity_subject_key" ON "Identity"("subject");

-- CreateIndex
CREATE INDEX "Identity_issuer_sub_idx" ON "Identity"("issuer", "sub");

-- CreateIndex
CREATE INDEX "Certificate_identityId_kind_notAfter_idx" ON "Certificate"("identityId", "kind", "notAfter");

-- CreateIndex
CREATE INDEX "Certificate_kind_createdAt_idx" ON "Certificate"("kind", "createdAt");

-- CreateIndex
CREATE INDEX "Certificate_status_notAfter_idx" ON "Certificate"("status", "notAfter");

-- CreateIndex
CREATE INDEX "Certificate_subject_idx" ON "Certificate"("subject");

-- CreateIndex
CREATE UNIQUE INDEX "Certificate_issuer_serialHex_key" ON "Certificate"("issuer", "serialHex");

-- CreateIndex
CREATE INDEX "AuditEvent_at_idx" ON "AuditEvent"("at");

-- CreateIndex
CREATE INDEX "AuditEvent_action_at_idx" ON "AuditEvent"("action", "at");

-- CreateIndex
CREATE INDEX "AuditEvent_certificateId_idx" ON "AuditEvent"("certificateId");

-- CreateIndex
CREATE INDEX "AuditEvent_identityId_at_idx" ON "AuditEvent"("identityId", "at");

-- AddForeignKey
ALTER TABLE "Certificate" ADD CONSTRAINT "Certificate_identityId_fkey" FOREIGN KEY ("identityId") REFERENCES "Identity"("id") ON DELETE RESTRICT ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Certificate" ADD CONSTRAINT "Certificate_parentId_fkey" FOREIGN KEY ("parentId") REFERENCES "Certificate"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AuditEvent" ADD CONSTRAINT "AuditEvent_identityId_fkey" FOREIGN KEY ("identityId") REFERENCES "Identity"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "AuditEvent" ADD CONSTRAINT "AuditEvent_certificateId_fkey" FOREIGN KEY ("certificateId") REFERENCES "Certificate"("id") ON DELETE SET NULL ON UPDATE CASCADE;

