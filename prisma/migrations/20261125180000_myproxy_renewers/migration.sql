-- CreateTable
CREATE TABLE "MyProxyRenewer" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "subject" TEXT NOT NULL,
    "label" TEXT NOT NULL,
    "caPem" TEXT NOT NULL,
    "crlPem" TEXT NOT NULL DEFAULT '',
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" DATETIME NOT NULL
);

-- CreateTable
CREATE TABLE "MyProxyRenewalConsent" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "identityId" TEXT NOT NULL,
    "renewerId" TEXT NOT NULL,
    "vo" TEXT NOT NULL,
    "role" TEXT,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" DATETIME NOT NULL,
    "revokedAt" DATETIME,
    CONSTRAINT "MyProxyRenewalConsent_identityId_fkey" FOREIGN KEY ("identityId") REFERENCES "Identity" ("id") ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "MyProxyRenewalConsent_renewerId_fkey" FOREIGN KEY ("renewerId") REFERENCES "MyProxyRenewer" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "MyProxyRenewer_subject_key" ON "MyProxyRenewer"("subject");

-- CreateIndex
CREATE INDEX "MyProxyRenewalConsent_identityId_idx" ON "MyProxyRenewalConsent"("identityId");

-- CreateIndex
CREATE INDEX "MyProxyRenewalConsent_renewerId_idx" ON "MyProxyRenewalConsent"("renewerId");
