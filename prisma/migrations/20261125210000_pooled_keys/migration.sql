-- CreateTable
CREATE TABLE "PooledKey" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "bits" INTEGER NOT NULL,
    "spki" BLOB NOT NULL,
    "keyEnc" TEXT NOT NULL,
    "createdAt" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);

-- CreateIndex
CREATE INDEX "PooledKey_bits_createdAt_idx" ON "PooledKey"("bits", "createdAt");
