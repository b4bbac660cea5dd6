-- CreateTable
CREATE TABLE "MyProxyRenewer" (
    "id" TEXT NOT NULL,
    "subject" TEXT NOT NULL,
    "label" TEXT NOT NULL,
    "caPem" TEXT NOT NULL,
    "crlPem" TEXT NOT NULL DEFAULT '',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "MyProxyRenewer_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "MyProxyRenewalConsent" (
    "id" TEXT NOT NULL,
    "identityId" TEXT NOT NULL,
    "renewerId" TEXT NOT NULL,
    "vo" TEXT NOT NULL,
    "role" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "revokedAt" TIMESTAMP(3),

    CONSTRAINT "MyProxyRenewalConsent_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "MyProxyRenewer_subject_key" ON "MyProxyRenewer"("subject");

-- CreateIndex
CREATE INDEX "MyProxyRenewalConsent_identityId_idx" ON "MyProxyRenewalConsent"("identityId");

-- CreateIndex
CREATE INDEX "MyProxyRenewalConsent_renewerId_idx" ON "MyProxyRenewalConsent"("renewerId");

-- AddForeignKey
ALTER TABLE "MyProxyRenewalConsent" ADD CONSTRAINT "MyProxyRenewalConsent_identityId_fkey" FOREIGN KEY ("identityId") REFERENCES "Identity"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "MyProxyRenewalConsent" ADD CONSTRAINT "MyProxyRenewalConsent_renewerId_fkey" FOREIGN KEY ("renewerId") REFERENCES "MyProxyRenewer"("id") ON DELETE CASCADE ON UPDATE CASCADE;
