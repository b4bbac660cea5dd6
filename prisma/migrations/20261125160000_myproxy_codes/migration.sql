-- CreateTable
CREATE TABLE "MyProxyCode" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "identityId" TEXT NOT NULL,
    "codeHash" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" DATETIME NOT NULL,
    "usedAt" DATETIME,
    CONSTRAINT "MyProxyCode_identityId_fkey" FOREIGN KEY ("identityId") REFERENCES "Identity" ("id") ON DELETE CASCADE ON UPDATE CASCADE
);

-- CreateIndex
CREATE UNIQUE INDEX "MyProxyCode_codeHash_key" ON "MyProxyCode"("codeHash");

-- CreateIndex
CREATE INDEX "MyProxyCode_identityId_idx" ON "MyProxyCode"("identityId");
